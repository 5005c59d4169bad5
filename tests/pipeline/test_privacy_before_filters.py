"""--classes and --max-det choose what is reported, not what is hidden: with blur, every face the model found is
blurred, the ones left out of the report too, in the one per-frame step every entry point runs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from maskdet.inference.detections import Frame
from maskdet.pipeline.step import Pipeline
from maskdet.settings import DetectionSettings, MonitoringSettings, PrivacySettings, Settings

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
from synthetic import to_model_pixels, write_scripted_onnx  # noqa: E402

MASKED = (10, 20, 50, 70)  # with_mask, 0.9, in a 160x120 frame
UNMASKED = (100, 20, 140, 70)  # without_mask, 0.6


def textured() -> np.ndarray:
    """Noise: blurring any part of it changes that part."""
    return np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)


@pytest.fixture
def two_faces(tmp_path) -> Path:
    boxes = [(*to_model_pixels(MASKED, (160, 120), 160), 0, 0.9), (*to_model_pixels(UNMASKED, (160, 120), 160), 1, 0.6)]
    return write_scripted_onnx(tmp_path / "two.onnx", boxes, 160)


def changed(before: np.ndarray, after: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    x1, y1, x2, y2 = box
    return not np.array_equal(before[y1:y2, x1:x2], after[y1:y2, x1:x2])


@pytest.mark.parametrize("filters, reported", [({"classes": (0,)}, ["with_mask"]), ({"max_det": 1}, ["with_mask"]),
                                               ({"classes": (1,)}, ["without_mask"])])
@pytest.mark.parametrize("track", [False, True])
def test_every_face_found_is_blurred_whatever_is_reported(two_faces, filters, reported, track):
    settings = Settings(detection=DetectionSettings(weights=two_faces, second_stage="off", **filters),
                        monitoring=MonitoringSettings(track=track, min_frames=1), privacy=PrivacySettings(level="blur"))
    image = textured()
    frame = Frame(image.copy(), "cam", "cam", "video", 0, 0.0, fps=25.0, position="1/1")
    det = Pipeline(settings).process(frame)
    assert [det.class_name(i) for i in range(len(det))] == reported
    assert changed(image, frame.image, MASKED) and changed(image, frame.image, UNMASKED)


def test_without_blur_the_filters_report_as_before_and_the_frame_is_untouched(two_faces):
    settings = Settings(detection=DetectionSettings(weights=two_faces, second_stage="off", classes=(1,)))
    image = textured()
    frame = Frame(image.copy(), "photo.png", "photo", "image", position="1/1")
    det = Pipeline(settings).process(frame)
    assert det.describe() == "1 without_mask" and np.array_equal(frame.image, image)
