"""The bench scripts are commands people run to check the card's figures, so they keep the commands' contract:
--help explains every option, every number is range-checked, and bad input (a number out of range, a corrupt
photo, a folder with too few photos) stops them with one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
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


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=None if env is None else {**os.environ, **env})


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The one line a refused command prints (exit 2, `error: ...`, no traceback)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr.strip()


def kaggle_download(folder: Path) -> Path:
    """A Kaggle face-mask folder as Kaggle ships it: images/ and annotations/, but not the project's splits/."""
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    return folder


def kaggle_with_splits(folder: Path) -> Path:
    """A one-photo Kaggle face-mask folder with the project's splits/: the astronaut photo, one face labelled."""
    kaggle_download(folder)
    photo = cv2.imread(str(ROOT / "samples" / "images" / "astronaut.jpg"))
    cv2.imwrite(str(folder / "images" / "p0.png"), photo)
    h, w = photo.shape[:2]
    (folder / "annotations" / "p0.xml").write_text(
        f"<annotation><filename>p0.png</filename><size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
        "<object><name>without_mask</name><bndbox><xmin>170</xmin><ymin>20</ymin><xmax>330</xmax><ymax>220</ymax>"
        "</bndbox></object></annotation>")
    (folder / "splits").mkdir()
    for split in ("val", "test"):
        (folder / "splits" / f"{split}.txt").write_text("p0\n")
    return folder


def import_benchlib(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("benchlib")


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


# Each bench writes its figures by --json (model_accuracy.py: by --card, the model card's file), atomically,
# and says where they went.

@pytest.mark.parametrize("script", BENCHES, ids=lambda p: p.name)
def test_every_bench_can_write_its_figures_to_a_file(script, monkeypatch):
    options = {s for action in parser_of(script, monkeypatch)._actions for s in action.option_strings}
    assert ("--card" if script.name == "model_accuracy.py" else "--json") in options


def test_the_figures_file_is_said_with_the_folders_made_for_it(tmp_path):
    target = tmp_path / "new" / "deeper" / "speed.json"
    proc = run("check_speed.py", "--sizes", "1", "--repeat", "1", "--json", target)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote the figures to {target} (made the folder {tmp_path / 'new'})" in proc.stdout.splitlines()
    assert json.loads(target.read_text())[0]["images"] == 1


def test_the_shared_module_run_as_a_command_says_it_is_a_library():
    proc = run("benchlib.py", "--help")
    assert "library for the bench scripts" in one_line_error(proc)


# Ultralytics' `yolo` command is found beside the interpreter (a venv's python run by its path leaves the venv's
# bin/ off PATH), and its absence is a one-line error.

def test_train_speed_finds_yolo_beside_the_interpreter_when_it_is_off_path():
    proc = run("train_speed.py", "--data", "nope.yaml", env={"PATH": "/usr/bin:/bin"})
    line = one_line_error(proc)  # the next check, the data: so `yolo` was found
    assert "nope.yaml" in line and "--data" in line and "yolo" not in line


def test_yolo_is_looked_for_beside_the_interpreter_then_on_path(tmp_path, monkeypatch):
    benchlib = import_benchlib(monkeypatch)
    from maskdet.errors import UserError

    (tmp_path / "bin").mkdir()
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UserError, match="needs Ultralytics' 'yolo' command"):
        benchlib.find_yolo()
    yolo = tmp_path / "bin" / "yolo"
    yolo.write_text("#!/bin/sh\n")
    yolo.chmod(0o755)
    assert benchlib.find_yolo() == str(yolo)


# model_accuracy.py --add: each problem said as it is.

def test_add_without_an_equals_sign_says_so(tmp_path):
    card = tmp_path / "metrics.json"
    card.write_text("{}")
    proc = run("model_accuracy.py", "--add", "foo", "--card", card)
    assert one_line_error(proc).startswith("error: --add needs KEY=MODEL, got 'foo'")


def test_add_to_a_card_that_is_not_there_names_it(tmp_path):
    proc = run("model_accuracy.py", "--add", "int8=models/best.onnx", "--card", tmp_path / "none.json")
    line = one_line_error(proc)
    assert str(tmp_path / "none.json") in line and "--card" in line


# The benches on the Kaggle photos take the folder by a flag; a folder without the project's splits/ (a Kaggle
# download) is one line naming the flag, before the model loads, and nothing falls back quietly.

@pytest.mark.parametrize("script, flag, split, otherwise", [
    ("privacy_cost.py", "--kaggle", "test", None), ("prelabel_saving.py", "--kaggle", "val", None),
    ("track_speed.py", "--kaggle", "test", "--sample"), ("serve_load.py", "--kaggle", "test", "--drawn")])
def test_a_kaggle_download_without_the_fixed_split_is_one_line_naming_the_flag(script, flag, split, otherwise, tmp_path):
    folder = kaggle_download(tmp_path / "kaggle")
    line = one_line_error(run(script, flag, folder))
    assert line.startswith(f"error: {folder}: no splits/{split}.txt") and f"give the folder with {flag}" in line
    assert otherwise is None or otherwise in line


@pytest.mark.parametrize("split, said", [("train", "trained on the train split"), ("bogus", "must be val or test")])
def test_prelabel_saving_takes_only_splits_the_model_never_saw_and_says_so_before_anything_loads(split, said, tmp_path):
    line = one_line_error(run("prelabel_saving.py", "--kaggle", tmp_path / "nowhere", "--splits", "val", split))
    assert line.startswith("error: argument --splits:") and said in line


def test_prelabel_saving_replays_the_given_folder_names_the_cpu_once_and_writes_its_figures(tmp_path):
    kaggle = kaggle_with_splits(tmp_path / "kaggle")
    proc = run("prelabel_saving.py", "--kaggle", kaggle, "--json", tmp_path / "saving.json")
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0]
    assert header.count("cores") == 1, header
    figures = json.loads((tmp_path / "saving.json").read_text())
    assert figures["splits"]["val"]["photos"] == 1 and figures["splits"]["test"]["true_boxes"] == 1


def test_track_speed_on_the_sample_says_so_and_a_missing_model_is_just_missing(tmp_path):
    proc = run("track_speed.py", "--sample", "--frames", "3", "--json", tmp_path / "track.json")
    assert proc.returncode == 0, proc.stderr
    assert "(sample photo, panned)" in proc.stdout
    assert json.loads((tmp_path / "track.json").read_text())["video"] == "sample photo, panned"
    line = one_line_error(run("track_speed.py", "--sample", "--weights", "nope.onnx", env={"YOLO_OFFLINE": "1"}))
    assert line == "error: nope.onnx: no such file"


# A missing model is "no such file", whatever its name; only a name Ultralytics downloads gets the offline advice,
# and that advice fits the command (only train.py has --model).

def test_a_missing_model_given_to_a_bench_is_no_such_file_without_train_advice():
    proc = run("robustness.py", "--weights", "nope.pt", "--data", "samples/data.yaml", env={"YOLO_OFFLINE": "1"})
    assert one_line_error(proc) == "error: nope.pt: no such file"


def test_offline_a_hub_name_gets_advice_that_fits_the_caller(monkeypatch):
    from maskdet.errors import UserError
    from maskdet.training.trainer import offline_train_hint, resolve_model

    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(UserError) as plain:
        resolve_model("yolo11n.pt")
    assert "offline" in str(plain.value) and "--model" not in str(plain.value)
    with pytest.raises(UserError) as training:
        resolve_model("yolo11n.pt", offline_train_hint)
    assert "--model yolo11n.yaml" in str(training.value)
    with pytest.raises(UserError, match=r"^nope\.onnx: no such file$"):
        resolve_model("nope.onnx", offline_train_hint)


# Side by side means at one size: a size the stride would round, or one a fixed-size export cannot take, is refused
# before anything is timed.

@pytest.mark.parametrize("script", ["model_speed.py", "detect_speed.py"])
def test_an_image_size_off_the_stride_is_refused_at_parse_time(script):
    line = one_line_error(run(script, "--imgsz", "33", "--rounds" if script == "model_speed.py" else "--repeat", "1"))
    assert line.startswith("error: argument --imgsz: must be a multiple of 32") and "try 64" in line


@pytest.mark.parametrize("script", ["model_speed.py", "detect_speed.py"])
def test_a_size_the_fixed_size_export_cannot_take_is_refused_before_timing(script):
    extra = ("--rounds", "1") if script == "model_speed.py" else ("--frames", "2", "--repeat", "1")
    line = one_line_error(run(script, "--imgsz", "640", *extra))
    assert "exported at a fixed 704x704 px" in line and "--imgsz 640" in line


def test_model_speed_says_the_one_size_every_model_ran_at(tmp_path):
    proc = run("model_speed.py", "--rounds", "1", "--json", tmp_path / "speed.json")
    assert proc.returncode == 0, proc.stderr
    assert " at 704 px," in proc.stdout
    assert json.loads((tmp_path / "speed.json").read_text())["imgsz"] == 704


def bench_module(name: str, monkeypatch: pytest.MonkeyPatch):
    """A bench script imported as a module (its main() not run)."""
    script = ROOT / "bench" / f"{name}.py"
    monkeypatch.syspath_prepend(str(script.parent))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_mutation_scores_of_earlier_runs_are_read_back_and_a_damaged_file_is_one_line(tmp_path, monkeypatch):
    from maskdet.errors import UserError

    mutation = bench_module("mutation", monkeypatch)
    scores = tmp_path / "scores.json"
    assert mutation.read_scores(scores) == {}
    scores.write_text('{"fileio": {"score": 0.9}}', encoding="utf-8")
    assert mutation.read_scores(scores) == {"fileio": {"score": 0.9}}
    for damaged in ('{"fileio": {"sco', "[1, 2]", "\udcff"):
        scores.write_text(damaged, encoding="utf-8", errors="surrogateescape")
        with pytest.raises(UserError, match="scores.json: not the scores an earlier run wrote"):
            mutation.read_scores(scores)
