"""Choosing the second stage's weight (maskdet/evaluation/second_stage.py): the sweep scores the per-frame step
at every weight exactly as the stage itself would run, while the classifier sees each photo's boxes only once."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from synthetic import NAMES, colour_classifier  # noqa: E402

from maskdet.evaluation.pipeline_map import SplitPredictions, score  # noqa: E402
from maskdet.evaluation.second_stage import choose_weight, weight_sweep  # noqa: E402
from maskdet.inference.detections import Detections  # noqa: E402
from maskdet.inference.second_stage import CropClassifier, SecondStage  # noqa: E402

RED, BLUE, GREY = (20, 20, 230), (230, 20, 20), (128, 128, 128)  # BGR: the classifier says 2, 1, unsure


def photo(faces: list[tuple[tuple[int, int, int, int], tuple[int, int, int]]]) -> np.ndarray:
    image = np.full((120, 160, 3), 60, np.uint8)
    for (x1, y1, x2, y2), colour in faces:
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    return image


def predictions() -> SplitPredictions:
    """Two photos: the detector is unsure and wrong on the red and blue faces, sure and right on the grey one."""
    faces = [[((10, 10, 40, 40), RED), ((60, 10, 90, 40), GREY)], [((60, 70, 90, 100), BLUE)]]
    detector = [([0, 0], [0.40, 0.90]), ([2], [0.30])]
    truths = [np.array([2, 0]), np.array([1])]
    images, dets, labels = [], [], []
    for scene, (classes, confidences), truth in zip(faces, detector, truths):
        xyxy = np.array([box for box, _ in scene], np.float32)
        images.append(photo(scene))
        dets.append(Detections(xyxy.copy(), np.array(confidences, np.float32), np.array(classes), NAMES))
        labels.append((xyxy.astype(float), truth))
    return SplitPredictions(images, dets, labels)


def test_the_sweep_scores_each_weight_as_the_stage_itself_and_runs_the_classifier_once_per_photo(tmp_path, monkeypatch):
    model = colour_classifier(tmp_path / "stage.onnx")
    split = predictions()
    weights = (0.0, 0.3, 0.6, 1.0)
    expected = {w: score(split, NAMES, SecondStage(model, NAMES, weight=w) if w else None).as_dict() for w in weights}

    calls = []
    original = CropClassifier.__call__
    monkeypatch.setattr(CropClassifier, "__call__", lambda self, crops: calls.append(len(crops)) or original(self, crops))
    sweep = weight_sweep(split, NAMES, model, weights)

    assert sweep == expected
    assert calls == [2, 1]  # each photo's boxes once, not once per weight
    assert sweep[0.0]["AP50"]["mask_weared_incorrect"] == 0 and sweep[0.6]["AP50"]["mask_weared_incorrect"] > 0.9
    assert choose_weight(sweep) == 0.3  # the smallest weight that fixes both faces
    assert sweep[0.3]["mAP50"] - sweep[0.0]["mAP50"] > 0.1
    assert split.detections[0].class_id.tolist() == [0, 0]  # the stored detections were left as the detector made them


def test_a_weight_must_beat_the_detector_alone_by_more_than_the_noise_of_val():
    sweep = {0.0: {"mAP50": 0.785}, 0.2: {"mAP50": 0.786}, 0.5: {"mAP50": 0.770}}
    assert choose_weight(sweep) == 0.0  # +0.001 is noise: no stage to run for it
    assert choose_weight({**sweep, 0.4: {"mAP50": 0.795}}) == 0.4
    assert choose_weight(sweep, min_gain=0.0) == 0.2
