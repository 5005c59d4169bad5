"""The bench scripts are commands people run to check the card's figures, so they keep the commands' contract:
--help explains every option, every number is range-checked, and bad input (a number out of range, a corrupt
photo, a folder with too few photos) stops them with one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(p for p in (ROOT / "bench").glob("*.py") if p.name != "benchlib.py")


def parser_of(script: Path, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser the script's main() builds, caught as it parses (nothing after that runs)."""
    monkeypatch.syspath_prepend(str(script.parent))  # as `python bench/x.py` puts it first, for benchlib
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    caught: list[argparse.ArgumentParser] = []

    def catch(self, args=None, namespace=None):
        caught.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    with pytest.raises(SystemExit):
        module.main([])
    return caught[0]


def write_image(path: Path) -> None:
    cv2.imwrite(str(path), np.full((120, 160, 3), 90, np.uint8))


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_every_bench_script_is_found():
    assert {"compare_models.py", "tiles.py", "model_speed.py", "robustness.py"} <= {p.name for p in BENCHES}


@pytest.mark.parametrize("script", BENCHES, ids=lambda p: p.name)
def test_help_explains_every_option_and_every_number_has_a_range(script, monkeypatch):
    parser = parser_of(script, monkeypatch)
    for action in parser._actions:
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help, f"{script.name} {name} has no help text"
        assert action.type not in (int, float), f"{script.name} {name} takes any number: give it maskdet.cli.number"
    assert parser.error.__func__ is not argparse.ArgumentParser.error, "argparse's usage block instead of one line"


@pytest.mark.parametrize("script", BENCHES, ids=lambda p: p.name)
def test_help_runs_as_a_command(script):
    proc = run(script.name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")


@pytest.mark.parametrize("args", [("--rounds", "0"), ("--threads", "-1"), ("--imgsz", "99999"), ("--rounds", "two")])
def test_a_number_out_of_range_is_one_line_and_exit_2(args):
    proc = run("model_speed.py", *args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: argument {args[0]}:"), proc.stderr


def test_a_corrupt_photo_is_named_in_one_line(tmp_path):
    write_image(tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    proc = run("model_speed.py", "--images", str(tmp_path), "--rounds", "1")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f"{tmp_path / 'b.jpg'}:" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_folder_without_photos_is_one_line(tmp_path):
    proc = run("model_speed.py", "--images", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr == f"error: {tmp_path}: the folder holds no images\n"


def test_one_photo_is_repeated_to_fill_the_largest_batch(tmp_path):
    write_image(tmp_path / "a.jpg")
    proc = run("batch_speed.py", "--images", str(tmp_path), "--batches", "1", "2", "--rounds", "1",
               "--json", str(tmp_path / "speed.json"))
    assert proc.returncode == 0, proc.stderr
    assert "2 photos (1 repeated to fill a batch of 2)" in proc.stdout
    assert set(json.loads((tmp_path / "speed.json").read_text())["median_per_photo"]) == {"1", "2"}
