"""monitor.py's flags are never silently ignored: --retain and --duration are for a live fleet and refused with
--archive; --duration takes the durations --retain and --period take (20m, 8h), and plain seconds still."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from maskdet.fleet.cameras import Camera

ROOT = Path(__file__).resolve().parents[2]


def monitor(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "monitor.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_retain_and_duration_are_refused_with_an_archive(tmp_path):
    (tmp_path / "recordings").mkdir()
    for args, line in ((["--retain", "1h"], "error: --retain prunes a live fleet's store while it runs: not with --archive"),
                       (["--duration", "5"], "error: --duration stops a live fleet: not with --archive (it ends when every "
                                             "video is done; Ctrl-C stops it, and a rerun goes on)")):
        proc = monitor("--archive", tmp_path / "recordings", "--db", tmp_path / "fleet.db", *args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert proc.stderr.strip().splitlines() == [line]
        assert not (tmp_path / "fleet.db").exists()


def test_duration_takes_units_like_retain_and_plain_seconds(tmp_path):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n", encoding="utf-8")
    for value in ("20m", "1.5h", "30", "0"):
        proc = monitor(cameras, "--duration", value, "--check", cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), (value, proc.stderr[-3000:])
    for value, line in (("2 weeks", "error: --duration must be a number and a unit (s, m, h or d), such as 72h or 20m, "
                                    "not '2 weeks'"),
                        ("-1", "error: --duration must be 0 (until Ctrl-C), a number of seconds or a duration such as 20m or 8h")):
        proc = monitor(cameras, "--duration", value, "--check", cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [line], (value, proc.stderr[-3000:])


def test_a_live_camera_that_gives_no_frame_at_all_is_named_and_the_exit_status_is_1(netns, tmp_path):
    """A wrong address or a dead camera: the run goes on for the others, but it does not end as if all was well.
    Cameras of earlier runs still in the store are not listed as this run's."""
    from maskdet.fleet.store import Store

    db = tmp_path / "fleet.db"
    store = Store.open(db)
    store.register_cameras([Camera("old-cam", "rtsp://10.0.0.9/gone")])  # from an earlier cameras file
    store.close()
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: dead-cam, source: 'rtsp://127.0.0.1:9/nothing'}\n", encoding="utf-8")
    proc = netns.run([sys.executable, ROOT / "monitor.py", cameras, "--db", db, "--duration", "3", "--workers", "1"],
                     cwd=tmp_path, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "dead-cam (/): 0 frames this run" in proc.stdout and "old-cam" not in proc.stdout
    assert "skipped: dead-cam: not one frame this run" in proc.stderr
