"""train.py, val.py and export.py refuse bad input in one line before Ultralytics starts (numbers out of range,
unknown settings, missing or label-less data, empty, text or non-detection checkpoints), turn what Ultralytics
raises into one line, and leave the user's files as they were (no labels.cache in the dataset, no scratch path)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic import write_yolo_dataset

from maskdet.config import load_dataset_config
from maskdet.errors import run_cli
from maskdet.training.trainer import check_training_data

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_PT = ROOT / "models" / "best.pt"


def cli(command: str, *args, capsys) -> tuple[int, str, str]:
    """Run a command's main() as its script does; (exit status, stdout, stderr)."""
    main = importlib.import_module(f"maskdet.cli.{command}").main
    try:
        code = run_cli(main, [str(a) for a in args])
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def one_line_error(code: int, err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert lines and lines[-1].startswith(("error: ", "train.py: error: ", "val.py: error: ", "export.py: error: ")), err
    assert len([line for line in lines if "error" in line]) == 1, err
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_yolo_dataset(tmp_path_factory.mktemp("tiny"), counts={"train": 8, "val": 4, "test": 4})


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_pt")
    (folder / "empty.pt").write_bytes(b"")
    (folder / "text.pt").write_text("these are not weights\n")
    from ultralytics import YOLO

    YOLO("yolo11n-cls.yaml").save(str(folder / "classify.pt"))  # built from its config: no download
    return {"empty": folder / "empty.pt", "text": folder / "text.pt", "classify": folder / "classify.pt"}


@pytest.mark.parametrize("command, args", [
    ("train", ["--epochs", "0"]), ("train", ["--epochs", "-1"]), ("train", ["--imgsz", "0"]), ("train", ["--batch", "0"]),
    ("train", ["--batch", "2.5"]), ("train", ["--workers", "-1"]), ("train", ["--patience", "0"]),
    ("train", ["--cls-pw", "2"]), ("train", ["--oversample", "-1"]), ("train", ["--seed", "-3"]),
    ("train", ["--camera-aug", "-1"]), ("train", ["--camera-aug", "nan"]), ("train", ["--camera-aug", "2"]),
    ("val", ["--conf", "2"]), ("val", ["--iou", "5"]), ("val", ["--imgsz", "0"]), ("val", ["--batch", "0"]),
    ("export", ["--imgsz", "0"]), ("export", ["--opset", "3"]),
])
def test_every_number_is_range_checked(command, args, capsys):
    code, _, err = cli(command, *args, capsys=capsys)
    one_line_error(code, err, args[0], args[1])


@pytest.mark.parametrize("setting, why", [("mosiac=0.5", "unknown training setting 'mosiac' (did you mean 'mosaic'?)"),
                                          ("lr0=abc", "'lr0=abc' is of invalid type"),
                                          ("mosaic=5", "'mosaic=5' is an invalid value")])
def test_an_unknown_or_bad_key_value_setting_is_one_line_before_a_run_folder(setting, why, dataset, tmp_path, capsys):
    code, _, err = cli("train", "--data", dataset, "--epochs", "1", setting, "--project", tmp_path, capsys=capsys)
    one_line_error(code, err, why)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("setting, flag", [("imgsz=0", "--imgsz"), ("epochs=5", "--epochs"), ("cls-pw=3", "--cls-pw"),
                                           ("data=other.yaml", "--data")])
def test_a_setting_that_has_a_flag_is_refused_as_key_value(setting, flag, dataset, tmp_path, capsys):
    """Given as key=value it would skip the flag's range check and override the flag without a word."""
    code, _, err = cli("train", "--data", dataset, "--epochs", "1", setting, "--project", tmp_path, capsys=capsys)
    one_line_error(code, err, "has a flag of its own", f"give it as {flag}")
    assert not list(tmp_path.iterdir())


def test_missing_split_folders_are_one_line_naming_split_py(tmp_path, capsys):
    yaml_path = tmp_path / "data.yaml"
    yaml_path.write_text("path: data\ntrain: train/images\nval: val/images\nnames: [a, b]\n")
    code, _, err = cli("train", "--data", yaml_path, "--epochs", "1", "--project", tmp_path / "runs", capsys=capsys)
    one_line_error(code, err, "does not exist", "labeling/split.py")
    assert not (tmp_path / "runs").exists()


def test_a_train_split_without_one_valid_label_is_one_line(dataset, tmp_path, capsys):
    root = tmp_path / "copy"
    shutil.copytree(dataset.parent, root)
    for label in (root / "train" / "labels").glob("*.txt"):
        label.write_text("7 0.5 0.5 0.2 0.2\n")  # class 7 of 3
    code, _, err = cli("train", "--data", root / "data.yaml", "--epochs", "1", "--project", tmp_path / "runs", capsys=capsys)
    one_line_error(code, err, "no image of the train split has a valid label", "class id 7 out of range")


def test_images_ultralytics_would_drop_for_a_bad_line_are_counted_and_named(dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(dataset.parent, root)
    labels = sorted((root / "train" / "labels").glob("*.txt"))
    for label in labels[:2]:
        label.write_text(label.read_text() + "0 0.5 0.5\n")  # one short line: Ultralytics drops the whole image
    checks = check_training_data(load_dataset_config(root / "data.yaml"))
    warning = checks["train"].warning("train")
    assert warning.startswith("warning: 2 of 8 train images have a label line Ultralytics cannot read")
    assert f"{labels[0]}:" in warning and "labeling/check.py" in warning
    assert checks["val"].warning("val") is None


@pytest.mark.parametrize("kind, why", [("empty", "empty file"), ("text", "cannot load this model"),
                                       ("classify", "classify model, not a detector")])
def test_a_bad_checkpoint_is_one_line_in_train_val_and_export(kind, why, bad_checkpoints, dataset, tmp_path, capsys):
    weights = tmp_path / bad_checkpoints[kind].name
    shutil.copy(bad_checkpoints[kind], weights)
    code, _, err = cli("train", "--data", dataset, "--model", weights, "--epochs", "1", "--project", tmp_path / "t",
                       capsys=capsys)
    one_line_error(code, err, why, str(weights))
    code, _, err = cli("val", "--data", dataset, "--weights", weights, "--project", tmp_path / "v", capsys=capsys)
    one_line_error(code, err, why, str(weights))
    code, _, err = cli("export", "--weights", weights, capsys=capsys)
    one_line_error(code, err, why, str(weights))
    assert not weights.with_suffix(".onnx").exists() and not (tmp_path / "t").exists()


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")
def test_a_gpu_device_on_a_machine_without_one_is_one_line(dataset, tmp_path, capsys):
    for command, args in (("train", ["--data", dataset, "--project", tmp_path]), ("val", ["--data", dataset])):
        code, _, err = cli(command, *args, "--device", "0", capsys=capsys)
        one_line_error(code, err, "--device 0: no CUDA GPU here")


def run_script(script: str, *args) -> subprocess.CompletedProcess:
    """As a user runs it with its output redirected to a file (not a terminal)."""
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


@pytest.mark.skipif(not SHIPPED_PT.is_file(), reason="models/best.pt is not here")
def test_val_leaves_the_dataset_folder_as_it_was_and_redirected_output_is_plain(dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(dataset.parent, root)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    proc = run_script("val.py", "--weights", SHIPPED_PT, "--data", root / "data.yaml", "--imgsz", "64", "--batch", "4",
                      "--project", tmp_path / "runs", "--no-plots")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before, "no labels.cache or anything else added"
    output = proc.stdout + proc.stderr
    assert "\x1b[" not in output and "\r" not in output, "colour codes or carriage returns in a file"


@pytest.mark.skipif(not SHIPPED_PT.is_file(), reason="models/best.pt is not here")
def test_export_names_only_paths_that_exist(tmp_path):
    weights = tmp_path / "best.pt"
    shutil.copy(SHIPPED_PT, weights)
    proc = run_script("export.py", "--weights", weights, "--imgsz", "64")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ".export-" not in proc.stdout + proc.stderr, "a scratch path that is gone once export.py returns"
    assert f"exported {weights.with_suffix('.onnx')}" in proc.stdout
