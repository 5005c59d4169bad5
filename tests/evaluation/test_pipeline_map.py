"""The per-frame step's own mAP (maskdet/evaluation/pipeline_map.py): boxes matched to labels exactly as
Ultralytics' validator matches them, scored with its ap_per_class, so that a second stage's effect is measured
on the same scale as val.py."""

from __future__ import annotations

import numpy as np
import pytest

from maskdet.evaluation.pipeline_map import SplitPredictions, box_iou, match, score
from maskdet.inference.detections import Detections

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")


def test_matching_agrees_with_ultralytics_on_random_scenes():
    torch = pytest.importorskip("torch", reason="Ultralytics' matcher runs on torch (requirements-train.txt)")
    from ultralytics.models.yolo.detect import DetectionValidator

    validator = DetectionValidator()
    rng = np.random.default_rng(7)
    for _ in range(50):
        truth = rng.uniform(0, 80, (rng.integers(0, 8), 2))
        true_xyxy = np.concatenate([truth, truth + rng.uniform(5, 30, truth.shape)], 1)
        true_cls = rng.integers(0, 3, len(true_xyxy))
        jitter = true_xyxy[rng.integers(0, max(1, len(true_xyxy)), rng.integers(0, 12))] if len(true_xyxy) else np.zeros((0, 4))
        pred_xyxy = jitter + rng.normal(0, 3, jitter.shape)
        pred_cls = rng.integers(0, 3, len(pred_xyxy))
        ours = match(pred_xyxy, pred_cls, true_xyxy, true_cls)
        iou = torch.from_numpy(box_iou(true_xyxy, pred_xyxy))
        theirs = validator.match_predictions(torch.from_numpy(pred_cls), torch.from_numpy(true_cls), iou).numpy()
        assert np.array_equal(ours, theirs)


def test_perfect_boxes_score_one_and_a_wrong_class_scores_zero_for_its_class():
    truth = (np.array([[10, 10, 30, 30], [50, 50, 80, 90], [5, 60, 25, 85]], float), np.array([0, 1, 2]))
    right = Detections(truth[0].astype(np.float32), np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 1, 2]), NAMES)
    result = score(SplitPredictions([None], [right], [truth]), NAMES)
    assert result.map50 == pytest.approx(0.995, abs=1e-3) and result.map50_95 == pytest.approx(0.995, abs=1e-3)
    wrong = Detections(truth[0].astype(np.float32), np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 1, 0]), NAMES)
    result = score(SplitPredictions([None], [wrong], [truth]), NAMES)
    assert result.ap50["mask_weared_incorrect"] == 0 and result.ap50["without_mask"] == pytest.approx(0.995, abs=1e-3)


def test_a_second_stage_is_scored_on_a_copy_of_the_detections():
    truth = (np.array([[10, 10, 30, 30]], float), np.array([2]))
    det = Detections(truth[0].astype(np.float32), np.array([0.6], np.float32), np.array([0]), NAMES)
    predictions = SplitPredictions([np.zeros((100, 100, 3), np.uint8)], [det], [truth])

    def to_incorrect(frame, d):
        d.class_id[:] = 2
        return d

    assert score(predictions, NAMES, to_incorrect).ap50["mask_weared_incorrect"] == pytest.approx(0.995, abs=1e-3)
    assert score(predictions, NAMES).ap50["mask_weared_incorrect"] == 0  # the stored detections were not changed
