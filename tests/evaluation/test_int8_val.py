"""val.py scores the INT8 model (models/best_int8_openvino_model/) like any other: on a one-photo split
whose label is the sample's bare face it finds that face; a model of other classes is refused in one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("openvino", reason="the INT8 model needs pip install openvino")

ROOT = Path(__file__).resolve().parents[2]
INT8 = ROOT / "models" / "best_int8_openvino_model"
ASTRONAUT = ROOT / "samples" / "images" / "astronaut.jpg"
FACE = "1 0.440 0.263 0.173 0.175\n"  # without_mask, hand-checked on the photo (YOLO x y w h, normalised)


def one_photo_dataset(root: Path, names: str = "with_mask, without_mask, mask_weared_incorrect") -> Path:
    for sub in ("images", "labels"):
        (root / "val" / sub).mkdir(parents=True)
    shutil.copy(ASTRONAUT, root / "val" / "images")
    (root / "val" / "labels" / "astronaut.txt").write_text(FACE)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: val/images\nval: val/images\nnames: [{names}]\n")
    return root / "data.yaml"


def val(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "val.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_val_py_scores_the_int8_model_on_the_samples_face(tmp_path):
    data = one_photo_dataset(tmp_path / "data")
    proc = val("--weights", INT8, "--data", data, "--project", tmp_path / "runs", "--no-plots")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-3000:]
    metrics = pd.read_csv(tmp_path / "runs" / "exp" / "metrics.csv", index_col="class")
    assert metrics.loc["without_mask", "instances"] == 1
    assert metrics.loc["all", "mAP50"] > 0.9


def test_val_py_refuses_an_int8_model_whose_classes_differ_from_data_yaml(tmp_path, tools):
    data = one_photo_dataset(tmp_path / "data", "face, mask, other")
    line = tools.assert_one_line_error(val("--weights", INT8, "--data", data, "--project", tmp_path / "runs"),
                                       "differ from data.yaml")
    assert "'face'" in line and not (tmp_path / "runs").exists()


def test_val_py_scores_a_fixed_size_export_at_its_own_size_without_being_told(tmp_path):
    """An .onnx exported at 320 takes only 320x320: val.py refused it ('not --imgsz 704', a flag never given),
    where detect.py runs it at its own size."""
    shutil.copy(ROOT / "models" / "best.pt", tmp_path / "small.pt")
    export = subprocess.run([sys.executable, str(ROOT / "export.py"), "--weights", str(tmp_path / "small.pt"),
                             "--imgsz", "320"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert export.returncode == 0, export.stdout[-2000:] + export.stderr[-2000:]
    data = one_photo_dataset(tmp_path / "data")
    proc = val("--weights", tmp_path / "small.onnx", "--data", data, "--project", tmp_path / "runs", "--no-plots")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "small.onnx on the val split (imgsz 320)" in proc.stdout
    assert "results (metrics.csv): " in proc.stdout  # --no-plots: no confusion matrix or curves are promised
    assert pd.read_csv(tmp_path / "runs" / "exp" / "metrics.csv", index_col="class").loc["all", "mAP50"] > 0.9
