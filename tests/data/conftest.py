"""Fixtures for the pre-label / review / merge specifications: photos, and models with known outputs.

* `photo_model(boxes, image_wh=(160, 120))`: a real ONNX file (tests/synthetic.py) that reports
  exactly `boxes` (x1, y1, x2, y2 in pixels of an image_wh photo, class id, confidence) on every
  photo of that size; prelabel.py loads it like any export.
* `FixedDetector`: stands in for the network inside one process, with other boxes for each photo
  (found by its first pixel), to order photos by how sure the model was.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from synthetic import NAMES, to_model_pixels, write_scripted_onnx  # noqa: E402

from maskdet.inference.detections import Detections  # noqa: E402

IMGSZ = 160


@pytest.fixture
def photo_model(tmp_path: Path) -> Callable[..., Path]:
    count = 0

    def make(boxes, image_wh: tuple[int, int] = (160, 120), names=NAMES) -> Path:
        nonlocal count
        count += 1
        model_boxes = [(*to_model_pixels(b[:4], image_wh, IMGSZ), b[4], b[5]) for b in boxes]
        return write_scripted_onnx(tmp_path / "models" / f"photo{count}.onnx", model_boxes, IMGSZ, names)

    return make


def write_photo(path: Path, shade: int, size: tuple[int, int] = (160, 120)) -> Path:
    """A real PNG whose pixels all have the value `shade` (FixedDetector tells photos apart by it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((size[1], size[0], 3), shade, np.uint8))
    return path


@pytest.fixture(scope="session")
def make_photo() -> Callable[..., Path]:
    """make_photo(path, shade, size=(160, 120))."""
    return write_photo


class FixedDetector:
    """The Detector protocol with a fixed answer per photo shade: {shade: [(x1, y1, x2, y2, cls, conf)]}."""

    names = NAMES
    imgsz = IMGSZ

    def __init__(self, answers: dict[int, list[tuple[float, float, float, float, int, float]]]):
        self.answers = answers

    def __call__(self, image: np.ndarray) -> Detections:
        rows = self.answers.get(int(image[0, 0, 0]), [])
        return Detections(np.array([r[:4] for r in rows], np.float32).reshape(-1, 4), np.array([r[5] for r in rows], np.float32),
                          np.array([r[4] for r in rows], int), NAMES)


@pytest.fixture(scope="session")
def fixed_detector() -> type[FixedDetector]:
    return FixedDetector
