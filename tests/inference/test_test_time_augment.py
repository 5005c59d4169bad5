"""Test-time augmentation (maskdet/inference/augment.py, `detect.py --augment`): the model also sees the mirror
image, and the two views' boxes are fused. A face seen in both views is one box at the views' mean confidence;
a face seen in one keeps half its confidence; boxes found in the mirror image land where the face is."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskdet.inference.augment import FlipAugmentedDetector, fuse_views, mirror_boxes
from maskdet.inference.detections import Detections

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")


def view(*boxes: tuple[float, float, float, float, int, float]) -> Detections:
    arr = np.array(boxes, np.float32).reshape(-1, 6)
    return Detections(arr[:, :4].copy(), arr[:, 5].copy(), arr[:, 4].astype(int), NAMES)


def rounded(confidence: np.ndarray) -> list[float]:
    return [round(float(c), 3) for c in confidence]


def test_a_face_seen_in_both_views_is_one_box_at_their_mean_confidence_its_corners_weighted_by_it():
    fused = fuse_views([view((10, 10, 30, 30, 1, 0.8)), view((12, 10, 32, 30, 1, 0.4))])
    assert len(fused) == 1 and fused.class_id.tolist() == [1]
    assert fused.confidence[0] == pytest.approx(0.6)
    # x1 = (10 * 0.8 + 12 * 0.4) / 1.2
    assert fused.xyxy[0].tolist() == pytest.approx([10 + 2 / 3, 10, 30 + 2 / 3, 30], abs=1e-4)


def test_a_face_seen_in_one_view_keeps_half_its_confidence_and_ranks_below_one_seen_twice():
    fused = fuse_views([view((10, 10, 30, 30, 0, 0.9), (60, 10, 80, 30, 0, 0.5)), view((61, 10, 81, 30, 0, 0.5))])
    assert fused.confidence.tolist() == pytest.approx([0.5, 0.45])  # best first: the face both views saw
    assert fused.xyxy[1].tolist() == pytest.approx([10, 10, 30, 30])


def test_views_that_disagree_on_the_class_give_the_face_both_classes_at_their_shares_unless_agnostic():
    views = [view((10, 10, 30, 30, 0, 0.6)), view((10, 10, 30, 30, 2, 0.4))]
    fused = fuse_views(views)
    assert sorted(zip(fused.class_id.tolist(), rounded(fused.confidence))) == [(0, 0.3), (2, 0.2)]
    agnostic = fuse_views(views, agnostic=True)
    assert agnostic.class_id.tolist() == [0] and agnostic.confidence[0] == pytest.approx(0.5)


def test_each_view_gives_a_face_at_most_one_box_and_far_boxes_stay_apart():
    # two boxes of one view overlapping the other view's box: only the better joins it; a box that overlaps
    # too little (IoU under 0.55) is another face
    fused = fuse_views([view((10, 10, 30, 30, 0, 0.8)), view((10, 10, 30, 30, 0, 0.6), (11, 10, 31, 30, 0, 0.3),
                                                             (22, 10, 42, 30, 0, 0.7))])
    assert sorted(rounded(fused.confidence)) == [0.15, 0.35, 0.7]
    assert len(fuse_views([view(), view()])) == 0
    capped = fuse_views([view(*[(i * 30, 0, i * 30 + 20, 20, 0, 0.9 - i / 100) for i in range(10)]), view()], max_det=3)
    assert len(capped) == 3 and capped.xyxy[:, 0].tolist() == [0, 30, 60]


def test_mirrored_boxes_come_back_to_the_frame():
    assert mirror_boxes(np.array([[0, 5, 10, 15], [150, 0, 160, 10]], np.float32), 160).tolist() == [[150, 5, 160, 15],
                                                                                                    [0, 0, 10, 10]]


class LeftHalfDetector:
    """A stand-in model that finds white squares, but only in the left half of what it is shown."""

    names = NAMES
    imgsz = 160

    def __call__(self, image: np.ndarray) -> Detections:
        mask = (image.min(axis=2) > 200).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [(x, y, x + w, y + h, 1, 0.8) for x, y, w, h, _ in stats[1:count] if x + w <= image.shape[1] / 2]
        found = view(*boxes) if boxes else view()
        found.timings_ms = {"inference": 5.0}
        return found


def test_the_mirror_view_finds_what_the_model_misses_and_puts_it_where_the_face_is():
    image = np.zeros((120, 200, 3), np.uint8)
    image[20:40, 30:50] = 255  # left: only the direct view sees it (the mirror puts it on the right)
    image[60:90, 140:170] = 255  # right: only the mirror view sees it
    direct = LeftHalfDetector()(image)
    assert direct.xyxy.tolist() == [[30, 20, 50, 40]]
    fused = FlipAugmentedDetector(LeftHalfDetector(), conf=0.25)(image)
    found = sorted(zip(fused.xyxy.tolist(), rounded(fused.confidence)))
    assert found == [([30, 20, 50, 40], 0.4), ([140, 60, 170, 90], 0.4)]
    assert fused.timings_ms == {"inference": 10.0}  # the cost of both inferences is reported
    assert len(FlipAugmentedDetector(LeftHalfDetector(), conf=0.5)(image)) == 0  # --conf judges the fused confidence


def test_detect_py_augment_fuses_the_mirror_view(detect, scripted_model, tmp_path, kit):
    """A scripted model reports the same boxes whatever it is shown: a box in the middle of the frame is its own
    mirror image (one box, the same confidence), a box off the middle is seen once in each place (half)."""
    weights = scripted_model([(70, 40, 90, 60, 0, 0.8), (10, 10, 30, 30, 1, 0.6)])
    picture = tmp_path / "scene.png"
    cv2.imwrite(str(picture), np.full((120, 160, 3), 90, np.uint8))
    for name, flags in (("plain", ()), ("augmented", ("--augment",))):
        proc = detect("--source", picture, "--weights", weights, "--conf", "0.2", "--save-csv", "--name", name, *flags)
        assert proc.returncode == 0, proc.stderr
    rows = {name: sorted((round(float(r["x1"])), round(float(r["confidence"]), 2), r["class_name"])
                         for r in kit.read_csv_rows(tmp_path / "runs" / name / "predictions.csv")[1])
            for name in ("plain", "augmented")}
    assert rows["plain"] == [(10, 0.6, "without_mask"), (70, 0.8, "with_mask")]
    assert rows["augmented"] == [(10, 0.3, "without_mask"), (70, 0.8, "with_mask"), (130, 0.3, "without_mask")]
    # --conf applies to the fused confidence: the faces one view saw at 0.6 are at 0.3 now
    proc = detect("--source", picture, "--weights", weights, "--conf", "0.4", "--save-csv", "--name", "strict", "--augment")
    assert proc.returncode == 0, proc.stderr
    strict = kit.read_csv_rows(tmp_path / "runs" / "strict" / "predictions.csv")[1]
    assert [(round(float(r["x1"])), r["class_name"]) for r in strict] == [(70, "with_mask")]
