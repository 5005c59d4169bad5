"""The per-frame step (maskdet.pipeline.step.Pipeline): built from Settings alone, the shipped model on a real
photo, stages in a fixed order, and one stream's state (tracker, people) never leaking into another's."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdet.inference.detections import Detections, Frame
from maskdet.inference.detectors import load_detector
from maskdet.models import default_weights
from maskdet.pipeline.step import STAGES, Pipeline
from maskdet.settings import DetectionSettings, MonitoringSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "samples" / "images" / "astronaut.jpg"  # one face without a mask, 0.83 with the shipped model


@pytest.fixture(scope="module")
def shipped() -> Pipeline:
    if not any(p.exists() for p in (ROOT / "models" / "best.onnx", ROOT / "models" / "best.pt")):
        pytest.skip("no shipped model in models/")
    return Pipeline(Settings())


def photo_frame(index: int = 0, source: str = "camera 1") -> Frame:
    image = cv2.imread(str(PHOTO))
    assert image is not None, PHOTO
    return Frame(image, source, "cam", "video", index, index / 25, fps=25.0, position="1/1")


def test_stages_run_in_the_documented_order_with_privacy_before_the_people_stage_crops_and_annotation():
    assert STAGES == ("detect", "second_stage", "privacy", "track", "annotate")


def test_a_pipeline_from_default_settings_finds_the_face_in_the_sample_photo(shipped):
    frame = photo_frame()
    before = frame.image.copy()
    det = shipped.process(frame)
    assert isinstance(det, Detections) and det.names == shipped.names == ("with_mask", "without_mask", "mask_weared_incorrect")
    assert det.describe() == "1 without_mask" and float(det.confidence[0]) > 0.5
    assert det.tracker_id is None  # no tracking asked for
    assert np.array_equal(frame.image, before)  # privacy "off": the frame is untouched


def test_the_step_gives_the_same_boxes_as_the_bare_detector(shipped):
    frame = photo_frame()
    bare = load_detector(default_weights(), DetectionSettings().finding())(frame.image)
    det = shipped.process(frame)
    assert np.allclose(det.xyxy, bare.xyxy) and np.array_equal(det.class_id, bare.class_id)


def test_annotation_draws_on_a_copy(shipped):
    frame = photo_frame()
    det, picture = shipped(frame)
    assert picture.shape == frame.image.shape and picture is not frame.image
    assert not np.array_equal(picture, frame.image)  # the box is drawn
    x1, y1, x2, y2 = (int(v) for v in det.xyxy[0])
    assert not np.array_equal(picture[y1:y2 + 1, x1], frame.image[y1:y2 + 1, x1])  # on the box's left edge


def test_a_blank_frame_gives_no_detections(shipped):
    det = shipped.process(Frame(np.full((240, 320, 3), 114, np.uint8), "blank", "blank", "image"))
    assert len(det) == 0 and det.describe() == "(no detections)"


def test_settings_reach_the_detector(shipped):
    strict = Pipeline(Settings(detection=DetectionSettings(conf=0.9)))  # its own model, loaded from the settings
    assert len(strict.process(photo_frame())) == 0  # the face scores 0.83


def test_each_camera_has_its_own_tracker_and_people_but_one_model(shipped):
    cam1 = Pipeline(Settings(monitoring=MonitoringSettings(track=True)), detector=shipped.detector)
    cam2 = cam1.new_stream()
    assert cam2.detector is cam1.detector is shipped.detector  # one model copy in memory
    assert cam2.monitor is not cam1.monitor and cam2.monitor.tracker is not cam1.monitor.tracker
    ids = [int(cam1.process(photo_frame(i)).tracker_id[0]) for i in range(4)]
    assert ids == [-1, 1, 1, 1]  # ByteTrack confirms a track on its second frame
    assert list(cam1.monitor.people.active) == [1] and not cam2.monitor.people.active
    # The same picture, under the same source name, on the other camera: a new track there, not cam1's #1
    # carried over (shared state would confirm it at once).
    assert int(cam2.process(photo_frame(0)).tracker_id[0]) == -1
    assert int(cam2.process(photo_frame(1)).tracker_id[0]) == 1
    assert cam1.monitor.people.active[1].frames == 3  # counted from cam1's own frames only
