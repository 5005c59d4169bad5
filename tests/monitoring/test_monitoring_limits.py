"""Every number a user gives monitoring is range-checked when it is given, in one line: --min-frames and
--alert-after have ceilings (said in --help), and --alert-url's port is checked before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from maskdet.errors import UserError
from maskdet.monitoring.monitor import Monitor
from maskdet.settings import MAX_ALERT_AFTER_S, MAX_MIN_FRAMES

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")


@pytest.mark.parametrize("flags, message", [
    (["--min-frames", "99999999999"], "error: argument --min-frames: must be at least 1 and at most 1000000"),
    (["--alert-after", "1e308"], "error: argument --alert-after: must be at least 0 and at most 86400"),
    (["--alert-url", "http://127.0.0.1:99999/"], "error: argument --alert-url: --alert-url 'http://127.0.0.1:99999/': the port must be"),
])
def test_detect_py_refuses_numbers_out_of_range_in_one_line(flags, message, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "detect.py"), "--source", str(tmp_path), "--track", "--alert",
                           "without_mask", "--project", str(tmp_path / "runs"), *flags],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().startswith(message), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_help_says_the_ceilings():
    proc = subprocess.run([sys.executable, str(ROOT / "detect.py"), "--help"], capture_output=True, text=True, timeout=120)
    text = " ".join(proc.stdout.split())
    assert f"(1 to {MAX_MIN_FRAMES:,})" in text and f"0 to {MAX_ALERT_AFTER_S:g}, a day" in text
    assert "port 1 to 65535" in text


@pytest.mark.parametrize("min_frames, alert_after", [(MAX_MIN_FRAMES + 1, 1.0), (5, MAX_ALERT_AFTER_S + 1), (5, float("nan"))])
def test_the_monitor_refuses_them_from_code_too(min_frames, alert_after):
    with pytest.raises(UserError):
        Monitor.from_args(NAMES, None, min_frames, ["without_mask"], alert_after, None)
