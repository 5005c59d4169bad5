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
# Ultralytics' logger keeps the sys.stdout it found when first imported. Imported inside a test, that is the test's
# capsys buffer, closed when the test ends, and a later test's log line fails with 'I/O operation on closed file'
# (this module alone did; after other modules it passed). Imported here, it keeps the session's stream.
importlib.import_module("ultralytics")


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
    ("train", ["--cls-pw", "2"]), ("train", ["--oversample", "-1"]), ("train", ["--oversample", "1e20"]), ("train", ["--seed", "-3"]),
    ("train", ["--camera-aug", "-1"]), ("train", ["--camera-aug", "nan"]), ("train", ["--camera-aug", "2"]),
    ("val", ["--conf", "2"]), ("val", ["--iou", "5"]), ("val", ["--imgsz", "0"]), ("val", ["--batch", "0"]),
    ("export", ["--imgsz", "0"]), ("export", ["--opset", "3"]),
])
def test_every_number_is_range_checked(command, args, capsys):
    code, _, err = cli(command, *args, capsys=capsys)
    one_line_error(code, err, args[0], args[1])


@pytest.mark.parametrize("setting, why", [("mosiac=0.5", "unknown training setting 'mosiac' (did you mean 'mosaic'?)"),
                                          ("lr0=abc", "'lr0=abc' is of invalid type"),
                                          ("mosaic=5", "'mosaic=5' is an invalid value"),
                                          ("close_mosaic=-1", "close_mosaic=-1 must be at least 0"),
                                          ("warmup_epochs=-1", "warmup_epochs=-1 must be at least 0"),
                                          ("time=-1", "time=-1 must be over 0 (hours)"), ("time=0", "time=0 must be over 0")])
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


@pytest.mark.parametrize(("given", "why"), [("photo.png", "not a .png file"), ("models", "not a folder"),
                                             ("data.yaml", "not a model architecture"),
                                             ("best.onnx", "an .onnx or an OpenVINO export is for detect.py")])
def test_a_model_that_cannot_be_trained_is_one_line_before_a_run_folder(given, why, dataset, tmp_path, capsys):
    """It started a run, then failed in Ultralytics ('should be a *.pt PyTorch model', KeyError: 'backbone')."""
    (tmp_path / "photo.png").write_bytes((ROOT / "samples" / "images" / "astronaut.jpg").read_bytes())
    (tmp_path / "models").mkdir()
    shutil.copy(dataset, tmp_path / "data.yaml")
    shutil.copy(ROOT / "models" / "best.onnx", tmp_path / "best.onnx")
    code, _, err = cli("train", "--data", dataset, "--model", tmp_path / given, "--epochs", "1",
                       "--project", tmp_path / "runs", capsys=capsys)
    line = one_line_error(code, err, str(tmp_path / given), why)
    if given == "data.yaml":
        assert line.endswith("(a dataset description goes to --data)")
    assert not (tmp_path / "runs").exists()


def test_int8_calibration_on_a_data_yaml_of_other_classes_is_one_line_before_anything_is_written(dataset, tmp_path,
                                                                                                  capsys):
    """It went through: Ultralytics took the photos as 'corrupt' and calibrated on whatever was left."""
    shutil.copy(SHIPPED_PT, tmp_path / "best.pt")
    other = tmp_path / "other.yaml"
    other.write_text(f"path: {dataset.parent}\ntrain: train/images\nval: val/images\nnames: [face]\n")
    code, _, err = cli("export", "--weights", tmp_path / "best.pt", "--int8", "--data", other, "--imgsz", "64",
                       capsys=capsys)
    one_line_error(code, err, str(tmp_path / "best.pt"), "differ from data.yaml's ['face']", "calibrate on the data.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "other.yaml"]


def test_resume_after_a_run_stopped_in_its_first_epoch_names_that_run_not_an_older_one(tmp_path, capsys):
    """Ctrl-C before the first epoch ends leaves args.yaml and no last.pt: --resume took the run before it."""
    older, stopped = tmp_path / "runs" / "int4", tmp_path / "runs" / "int5"
    (older / "weights").mkdir(parents=True)
    shutil.copy(SHIPPED_PT, older / "weights" / "last.pt")
    (older / "args.yaml").write_text("epochs: 1\n")
    for made in (older / "args.yaml", older / "weights" / "last.pt"):
        os.utime(made, (1_700_000_000, 1_700_000_000))
    stopped.mkdir()
    (stopped / "args.yaml").write_text("epochs: 1\n")
    code, _, err = cli("train", "--resume", "--project", tmp_path / "runs", capsys=capsys)
    one_line_error(code, err, f"the latest run, {stopped}, stopped before its first epoch ended",
                   f"--resume {older / 'weights' / 'last.pt'}")


def test_a_data_yaml_whose_nc_disagrees_with_its_names_is_one_line_naming_the_line(dataset, tmp_path, capsys):
    lines = dataset.read_text().splitlines()
    (tmp_path / "data.yaml").write_text("\n".join([*lines[:1], "nc: 5", *lines[1:]]).replace("path: .", f"path: {dataset.parent}") + "\n")
    code, _, err = cli("train", "--data", tmp_path / "data.yaml", "--epochs", "1", "--project", tmp_path / "runs",
                       capsys=capsys)
    one_line_error(code, err, f"{tmp_path / 'data.yaml'}:2:", "'nc: 5' but 3 names", "leave nc out")
    assert not (tmp_path / "runs").exists()


def test_int8_calibration_on_a_train_folder_that_is_not_there_says_so(dataset, tmp_path, capsys):
    shutil.copy(SHIPPED_PT, tmp_path / "best.pt")
    (tmp_path / "data.yaml").write_text("path: nowhere\ntrain: train/images\nval: val/images\n"
                                        "names: [with_mask, without_mask, mask_weared_incorrect]\n")
    code, _, err = cli("export", "--weights", tmp_path / "best.pt", "--int8", "--data", tmp_path / "data.yaml",
                       capsys=capsys)
    one_line_error(code, err, str(tmp_path / "nowhere" / "train" / "images"), "the train folder data.yaml names is not there")


def test_average_refuses_training_settings_it_would_ignore_in_one_line(tmp_path, capsys):
    code, _, err = cli("train", "--average", SHIPPED_PT, SHIPPED_PT, "--epochs", "5", "lr0=0.01", "--project",
                       tmp_path / "runs", capsys=capsys)
    one_line_error(code, err, "--average trains nothing, so --epochs, lr0=0.01 would be ignored")
    assert not (tmp_path / "runs").exists()


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


def test_val_scores_the_test_split_of_a_data_yaml_that_names_no_train_or_val(dataset, tmp_path, capsys):
    """A held-out set described alone: Ultralytics' check demands 'val:' and named its own copy in the error."""
    alone = tmp_path / "held_out.yaml"
    alone.write_text(f"path: {dataset.parent}\ntest: test/images\nnames: [with_mask, without_mask, mask_weared_incorrect]\n")
    code, out, err = cli("val", "--weights", SHIPPED_PT, "--data", alone, "--split", "test", "--imgsz", "64", "--batch",
                         "4", "--project", tmp_path / "runs", "--no-plots", capsys=capsys)
    assert code == 0, err
    assert "best.pt on the test split (imgsz 64)" in out


@pytest.mark.skipif(not SHIPPED_PT.is_file(), reason="models/best.pt is not here")
def test_export_names_only_paths_that_exist(tmp_path):
    weights = tmp_path / "best.pt"
    shutil.copy(SHIPPED_PT, weights)
    proc = run_script("export.py", "--weights", weights, "--imgsz", "64")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ".export-" not in proc.stdout + proc.stderr, "a scratch path that is gone once export.py returns"
    assert f"exported {weights.with_suffix('.onnx')}" in proc.stdout


@pytest.mark.skipif(not SHIPPED_PT.is_file(), reason="models/best.pt is not here")
def test_val_refuses_a_pt_whose_classes_differ_from_data_yaml_before_a_run_folder(dataset, tmp_path, capsys):
    # With two names swapped the table would print with_mask's figures as without_mask's, and exit 0.
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text(dataset.read_text().replace("0: with_mask", "0: TMP").replace("1: without_mask", "1: with_mask")
                       .replace("0: TMP", "0: without_mask").replace("path: .", f"path: {dataset.parent}"))
    code, _, err = cli("val", "--weights", SHIPPED_PT, "--data", swapped, "--imgsz", "64", "--project", tmp_path / "runs",
                       capsys=capsys)
    one_line_error(code, err, str(SHIPPED_PT), "classes", "differ from data.yaml's")
    assert not (tmp_path / "runs").exists()


def test_resume_of_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path, capsys):
    results = tmp_path / "exp" / "results.csv"
    results.parent.mkdir()
    results.write_text("epoch,train/box_loss\n1,3.2\n")
    code, _, err = cli("train", "--resume", results, capsys=capsys)
    one_line_error(code, err, str(results), "not a checkpoint: --resume takes a run's weights/last.pt")


@pytest.mark.parametrize("extra, named", [
    (["--epochs", "2", "--imgsz", "320", "--oversample", "0.8", "mosaic=0"], "--epochs, --imgsz, --oversample, mosaic=0"),
    (["--epochs", "100"], "--epochs"),  # the default value, given: still a setting the user expects to count
    (["--data", "other.yaml"], "--data"),
])
def test_resume_refuses_settings_it_would_ignore_in_one_line(extra, named, tmp_path, capsys):
    code, _, err = cli("train", "--resume", *extra, "--project", tmp_path, capsys=capsys)
    one_line_error(code, err, f"--resume continues a run with the settings it was started with, so {named} would be ignored")
    assert not list(tmp_path.iterdir())


def test_resume_refusing_a_setting_names_the_run_it_would_continue(tmp_path, capsys):
    (tmp_path / "int4" / "weights").mkdir(parents=True)
    (tmp_path / "int4" / "weights" / "last.pt").write_bytes(b"x")
    code, _, err = cli("train", "--resume", "--imgsz", "160", "--project", tmp_path, capsys=capsys)
    one_line_error(code, err, f"(python train.py --model {tmp_path / 'int4' / 'weights' / 'last.pt'} ...)")


def test_resume_still_takes_the_device_and_where_runs_are(tmp_path, capsys):
    code, _, err = cli("train", "--resume", "--device", "cpu", "--camera-aug", "0.1", "--project", tmp_path, capsys=capsys)
    one_line_error(code, err, f"no run to resume: no */weights/last.pt under {tmp_path}")


@pytest.mark.skipif(not SHIPPED_PT.is_file(), reason="models/best.pt is not here")
def test_val_names_a_photo_ultralytics_left_out_for_its_image_not_blaming_a_label_line(dataset, tmp_path, capsys):
    root = tmp_path / "copy"
    shutil.copytree(dataset.parent, root)
    (root / "val" / "images" / "broken.jpg").write_bytes(b"")  # a 0-byte photo: Ultralytics drops it
    code, out, _ = cli("val", "--weights", SHIPPED_PT, "--data", root / "data.yaml", "--imgsz", "64", "--batch", "4",
                       "--project", tmp_path / "runs", "--no-plots", capsys=capsys)
    assert code == 0
    note = next(line for line in out.splitlines() if line.startswith("note: "))
    assert note.startswith(f"note: 1 photo of the val split left out, e.g. {root / 'val' / 'images' / 'broken.jpg'}: "
                           "Ultralytics could not use its image or a line of its label"), note
    assert "could not read a label line" not in out


def test_the_end_of_training_counts_the_photos_ultralytics_left_out_images_included(tmp_path):
    from types import SimpleNamespace

    from maskdet.training.trainer import left_out_by_ultralytics

    root = write_yolo_dataset(tmp_path / "ds", counts={"train": 3, "val": 2}).parent
    train = sorted((root / "train" / "images").iterdir())
    val = sorted((root / "val" / "images").iterdir())
    oversampled = tmp_path / "train_oversampled.txt"  # --oversample's list: the first photo twice
    oversampled.write_text("".join(f"{p}\n" for p in (train[0], *train)))

    def trainer_that_kept(train_kept, val_kept, train_source):
        loader = lambda files: SimpleNamespace(dataset=SimpleNamespace(im_files=[str(p) for p in files]))  # noqa: E731
        return SimpleNamespace(train_loader=loader(train_kept), test_loader=loader(val_kept),
                               data={"train": str(train_source), "val": str(root / "val" / "images")})

    assert left_out_by_ultralytics(trainer_that_kept(train, val, root / "train" / "images")) == []
    lines = left_out_by_ultralytics(trainer_that_kept([train[0], train[0], train[1]], val[1:], oversampled))
    assert lines == [f"warning: Ultralytics left out 1 of 3 train photos (e.g. {train[2]}): it could not use the image "
                     "or a line of the label; python labeling/check.py names each and why",
                     f"warning: Ultralytics left out 1 of 2 val photos (e.g. {val[0]}): it could not use the image "
                     "or a line of the label; python labeling/check.py names each and why"]
    assert left_out_by_ultralytics(SimpleNamespace(data={})) is None  # not told: the checks before training stand


def test_export_says_when_it_rounds_the_size_up_as_val_does(tmp_path, capsys):
    code, out, err = cli("export", "--weights", tmp_path / "nope.pt", "--imgsz", "100", capsys=capsys)
    assert "note: --imgsz 100 is not a multiple of 32 (the model's largest stride): exported at 128" in out
    one_line_error(code, err, "weights not found")
