"""train_second_stage.py refuses, in one line and before crops are cut or a classifier is trained, a dataset it
cannot choose the weight on (no val split, an empty one) or whose classes are not the detector's."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import write_yolo_dataset

from maskdet.cli import train_second_stage
from maskdet.errors import run_cli

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_ONNX = ROOT / "models" / "best.onnx"

pytestmark = pytest.mark.skipif(not SHIPPED_ONNX.is_file(), reason="models/best.onnx is not here")


def weigh_only(data: Path, tmp_path: Path, capsys) -> tuple[int, str]:
    out = tmp_path / "stage" / "second_stage.onnx"
    code = run_cli(train_second_stage.main, ["--data", str(data), "--weights", str(SHIPPED_ONNX), "--weigh-only",
                                             "--out", str(out), "--name", "t"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    assert not out.with_name("second_stage.json").exists()
    return code, captured.err.strip()


def test_a_data_yaml_without_val_is_one_line_naming_it(tmp_path, capsys):
    data = write_yolo_dataset(tmp_path / "ds", counts={"train": 2})
    code, err = weigh_only(data, tmp_path, capsys)
    assert code == 2 and err == f"error: {data}: data.yaml names no 'val' split"


def test_an_empty_val_split_is_one_line_naming_it(tmp_path, capsys):
    data = write_yolo_dataset(tmp_path / "ds", counts={"train": 2, "val": 1})
    for image in (tmp_path / "ds" / "val" / "images").iterdir():
        image.unlink()
    code, err = weigh_only(data, tmp_path, capsys)
    assert code == 2 and err.startswith(f"error: {tmp_path / 'ds' / 'val' / 'images'}: the val split has no images")


def test_a_dataset_of_other_classes_than_the_detector_is_refused(tmp_path, capsys):
    data = write_yolo_dataset(tmp_path / "ds", counts={"train": 2, "val": 1})
    data.write_text(data.read_text().replace("  2: mask_weared_incorrect\n", ""))  # a 2-class data.yaml
    code, err = weigh_only(data, tmp_path, capsys)
    assert code == 2 and err.startswith(f"error: {SHIPPED_ONNX}: the model's classes")
    assert "differ from data.yaml's ['with_mask', 'without_mask']" in err
