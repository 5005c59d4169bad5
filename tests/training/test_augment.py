"""train.py --camera-aug: training photos degraded the way a camera degrades them, boxes untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from copy import copy
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_yolo_dataset

from maskdet.errors import UserError
from maskdet.training.augment import CameraCorruption, add_camera_corruption, saved_probability

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("p", [0.0, -0.1, 1.5])
def test_a_probability_outside_0_to_1_is_refused(p):
    with pytest.raises(UserError, match="--camera-aug"):
        CameraCorruption(p)


def test_at_full_probability_a_photo_comes_out_degraded_and_nothing_else_changes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    boxes = np.array([[0.5, 0.5, 0.2, 0.2]], np.float32)
    labels = CameraCorruption(1.0, seed=1)({"img": image.copy(), "bboxes": boxes.copy(), "cls": np.array([[1]])})
    assert labels["img"].shape == image.shape and labels["img"].dtype == np.uint8
    assert np.abs(labels["img"].astype(int) - image).mean() > 5
    np.testing.assert_array_equal(labels["bboxes"], boxes)


def test_high_frequencies_fall_on_average_as_on_a_soft_camera():
    import cv2

    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    corrupt = CameraCorruption(1.0, seed=3)
    sharpness = [cv2.Laplacian(corrupt.corrupt(image.copy()), cv2.CV_32F).var() for _ in range(20)]
    assert np.median(sharpness) < 0.5 * cv2.Laplacian(image, cv2.CV_32F).var()


def test_the_dataset_keeps_the_corruption_when_mosaic_closes(tmp_path):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import YOLODataset

    data_yaml = write_yolo_dataset(tmp_path, {"train": 4, "val": 1})
    hyp = get_cfg()
    dataset = YOLODataset(img_path=str(data_yaml.parent / "train" / "images"), imgsz=64, augment=True, hyp=copy(hyp),
                          data={"names": dict(enumerate(["a", "b", "c"])), "channels": 3})
    add_camera_corruption(dataset, 0.5)
    kinds = [type(t).__name__ for t in dataset.transforms.transforms]
    assert kinds[-2:] == ["CameraCorruption", "Format"]
    dataset.close_mosaic(copy(hyp))  # Ultralytics rebuilds the transforms for the last epochs
    kinds = [type(t).__name__ for t in dataset.transforms.transforms]
    assert kinds.count("CameraCorruption") == 1 and kinds[-2:] == ["CameraCorruption", "Format"]
    sample = dataset[0]
    assert sample["img"].shape[0] == 3


def test_train_py_trains_with_it_and_records_it_for_resume(tmp_path):
    data_yaml = write_yolo_dataset(tmp_path / "data", {"train": 4, "val": 2})
    project = tmp_path / "runs"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data_yaml), "--epochs", "1",
                           "--imgsz", "64", "--batch", "4", "--workers", "0", "--project", str(project),
                           "--camera-aug", "0.3"], capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "camera augmentation" in proc.stdout and "p=0.3" in proc.stdout
    assert saved_probability(project / "exp") == 0.3


def test_train_py_refuses_a_probability_above_one_in_one_line(tmp_path):
    data_yaml = write_yolo_dataset(tmp_path / "data", {"train": 2, "val": 1})
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data_yaml), "--camera-aug", "2",
                           "--project", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "argument --camera-aug: must be at least 0 and at most 1, got 2" in proc.stderr
    assert not (tmp_path / "runs").exists()  # refused before the run folder
