"""The privacy stage in the per-frame step: with blur the face is blurred in the frame itself, before the people
stage crops it and before annotation, and nowhere else; the tracker's boxes and verdicts are the same as without."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdet.inference.detections import Frame
from maskdet.pipeline.step import Pipeline
from maskdet.privacy.blur import enlarged
from maskdet.settings import MonitoringSettings, PrivacySettings, Settings

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "samples" / "images" / "astronaut.jpg"  # one face without a mask


@pytest.fixture(scope="module")
def pipelines():
    if not (ROOT / "models" / "best.onnx").exists():
        pytest.skip("no shipped model in models/")
    blur = Pipeline(Settings(monitoring=MonitoringSettings(track=True, min_frames=1), privacy=PrivacySettings(level="blur")))
    off = Pipeline(Settings(monitoring=MonitoringSettings(track=True, min_frames=1), privacy=PrivacySettings(level="off")),
                   detector=blur.detector)
    return blur, off


def frames(n: int = 3):
    image = cv2.imread(str(PHOTO))
    return [Frame(image.copy(), "cam", "cam", "video", i, i / 25, fps=25.0, position="1/1") for i in range(n)]


@pytest.fixture(scope="module")
def processed(pipelines):
    """(original, blurred frame, its detections, frame with off, its detections) for 3 frames, through both."""
    blur, off = pipelines
    out = []
    for frame_b, frame_o in zip(frames(), frames()):
        original = frame_b.image.copy()
        out.append((original, frame_b, blur.process(frame_b), frame_o, off.process(frame_o)))
    return out


def test_blur_changes_the_frame_inside_the_enlarged_face_box_only(processed):
    for original, frame_b, det_b, frame_o, det_o in processed:
        assert np.array_equal(det_b.xyxy, det_o.xyxy) and np.array_equal(det_b.tracker_id, det_o.tracker_id)
        assert np.array_equal(frame_o.image, original)  # off: untouched
        h, w = original.shape[:2]
        (x1, y1, x2, y2), = enlarged(det_b.xyxy, PrivacySettings().blur_margin, w, h)
        inside = np.zeros((h, w), bool)
        inside[y1:y2, x1:x2] = True
        assert np.array_equal(frame_b.image[~inside], original[~inside])
        gray = lambda im, y1=y1, y2=y2, x1=x1, x2=x2: cv2.cvtColor(im[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)  # noqa: E731
        assert cv2.Laplacian(gray(frame_b.image), cv2.CV_64F).var() <= 0.1 * cv2.Laplacian(gray(original), cv2.CV_64F).var()
        assert "blur" in det_b.timings_ms


def test_the_people_stage_keeps_a_crop_of_the_blurred_frame_only(pipelines, processed):
    blur, off = pipelines
    (person_b,), (person_o,) = blur.monitor.people.active.values(), off.monitor.people.active.values()
    assert person_b.best_crop.shape == person_o.best_crop.shape
    detail = lambda im: cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()  # noqa: E731
    assert detail(person_b.best_crop) <= 0.1 * detail(person_o.best_crop)
