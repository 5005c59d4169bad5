"""The detector's geometry and NMS at their edges: grey padding in every channel, nothing found, --conf
with agnostic NMS, which outputs are end-to-end, the types and timings of what comes back, and the
shipped model on a real photo (found by mutation testing, bench/mutation.py)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from maskdet.inference.detectors import DetectSettings, decode_end2end, decode_raw, is_end2end, letterbox, load_detector, nms

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("wh", [(120, 160), (160, 120)])
def test_the_padding_is_grey_114_in_every_channel(wh):
    w, h = wh
    padded, _scale, (left, top) = letterbox(np.zeros((h, w, 3), np.uint8), 320)
    pad = np.ones((320, 320), bool)
    pad[top:320 - top, left:320 - left] = False
    assert pad.any() and (padded[pad] == 114).all() and (padded[~pad] == 0).all()


def test_nothing_above_conf_gives_empty_integer_indices_that_index_nothing():
    keep = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), DetectSettings())
    assert keep.dtype.kind == "i" and np.zeros((0, 4))[keep].shape == (0, 4)
    pred = np.zeros((7, 5), np.float32)  # 4 + 3 classes, 5 anchors, every score 0
    boxes, scores, class_ids = decode_raw(pred, DetectSettings(conf=0.25))
    assert boxes.shape == (0, 4) and len(scores) == 0 and len(class_ids) == 0


def test_agnostic_nms_drops_boxes_under_conf():
    boxes = np.array([(0, 0, 50, 50), (200, 200, 250, 250)], np.float32)  # apart: NMS keeps both
    scores = np.array([0.8, 0.9], np.float32)
    keep = nms(boxes, scores, np.array([0, 1]), DetectSettings(conf=0.85, agnostic_nms=True))
    assert keep.tolist() == [1]


def test_nms_keeps_ties_in_their_order_and_caps_at_max_det():
    boxes = np.array([(i * 60, 0, i * 60 + 50, 50) for i in range(40)], np.float32)  # 40 apart, equal scores
    keep = nms(boxes, np.full(40, 0.5, np.float32), np.zeros(40, int), DetectSettings(max_det=30))
    assert keep.tolist() == list(range(30))


def test_the_class_filter_and_conf_apply_together_on_end_to_end_output():
    rows = np.array([[0, 0, 10, 10, 0.3, 0], [0, 0, 10, 10, 0.9, 0], [0, 0, 10, 10, 0.9, 1]], np.float32)
    _boxes, scores, class_ids = decode_end2end(rows, DetectSettings(conf=0.5, classes=(0,)))
    assert scores.tolist() == [pytest.approx(0.9)] and class_ids.tolist() == [0]
    assert class_ids.dtype.kind == "i"


@pytest.mark.parametrize(("meta", "shape", "classes", "expected"), [
    ({"end2end": "False"}, [1, 300, 6], 3, False),  # the metadata wins over the shape
    ({"end2end": " TRUE "}, [1, 7, 8400], 3, True),
    ({}, [1, 300, 6], 2, True),  # rows of 6 though 4 + 2 classes is 6 too: 300 rows are not 6 channels
    ({}, [1, 7, 6], 3, False),  # a classic head with 3 classes and only 6 anchors
    ({}, [1, 10, 8400], 3, False),  # a classic head, whatever its class count
    ({}, [1, 300, 7], 3, False),
    ({}, [300, 6], 3, False),
])
def test_which_outputs_are_end_to_end(meta, shape, classes, expected):
    assert is_end2end(meta, shape, classes) is expected


@pytest.fixture(scope="module")
def shipped():
    path = ROOT / "models" / "best.onnx"
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return load_detector(path, DetectSettings())


def test_the_shipped_model_finds_the_face_on_the_sample_photo_in_float32_pixels_with_timings(shipped):
    import cv2

    image = cv2.imread(str(ROOT / "samples" / "images" / "astronaut.jpg"))
    t0 = time.perf_counter()
    det = shipped(image)
    wall_ms = (time.perf_counter() - t0) * 1e3
    assert len(det) >= 1 and det.confidence.max() > 0.5
    h, w = image.shape[:2]
    assert det.xyxy.dtype == np.float32 and det.class_id.dtype.kind == "i"
    assert (det.xyxy[:, [0, 2]] <= w).all() and (det.xyxy[:, [1, 3]] <= h).all() and (det.xyxy >= 0).all()
    assert set(det.timings_ms) == {"preprocess", "inference", "nms"}
    assert all(v >= 0 for v in det.timings_ms.values())
    # The three stages are (almost) the whole call, in milliseconds.
    assert 0.5 * wall_ms <= sum(det.timings_ms.values()) <= wall_ms
    assert det.timings_ms["inference"] >= 0.3 * wall_ms
    # Letterboxing a photo and decoding 8,400 anchors each take well over a microsecond: milliseconds, not seconds.
    assert det.timings_ms["preprocess"] > 0.01 and det.timings_ms["nms"] > 0.01


def test_multi_label_decoding_gives_a_box_for_every_class_over_conf_as_ultralytics_validator_does():
    pred = np.zeros((7, 3), np.float32)  # 4 + 3 classes, 3 anchors
    pred[:4, 0], pred[4:, 0] = (50, 50, 20, 20), (0.6, 0.3, 0.0)  # two classes over 0.25
    pred[:4, 1], pred[4:, 1] = (150, 50, 20, 20), (0.1, 0.2, 0.9)
    pred[:4, 2], pred[4:, 2] = (250, 50, 20, 20), (0.1, 0.2, 0.1)  # nothing over 0.25
    single = decode_raw(pred.copy(), DetectSettings(conf=0.25))
    multi = decode_raw(pred.copy(), DetectSettings(conf=0.25, multi_label=True))
    assert sorted((int(c), round(float(v), 2)) for c, v in zip(single[2], single[1])) == [(0, 0.6), (2, 0.9)]
    assert sorted((int(c), round(float(v), 2)) for c, v in zip(multi[2], multi[1])) == [(0, 0.6), (1, 0.3), (2, 0.9)]
    assert multi[0][multi[2] == 1].tolist() == [[40, 40, 60, 60]]  # the same box, with its second class
    only = decode_raw(pred.copy(), DetectSettings(conf=0.25, multi_label=True, classes=(1,)))
    assert only[2].tolist() == [1]


@pytest.mark.parametrize("agnostic", [False, True])
def test_max_det_caps_the_faces_kept_not_the_candidates_nms_looks_at(agnostic):
    # 10 faces apart, each with 5 overlapping candidate boxes: 50 candidates; --max-det 10 keeps all 10 faces
    boxes = np.array([(i * 100 + j, 0, i * 100 + j + 50, 50) for i in range(10) for j in range(5)], np.float32)
    scores = np.array([0.9 - i * 0.05 - j * 0.001 for i in range(10) for j in range(5)], np.float32)
    keep = nms(boxes, scores, np.zeros(50, int), DetectSettings(conf=0.1, iou=0.5, max_det=10, agnostic_nms=agnostic))
    assert keep.tolist() == [i * 5 for i in range(10)]
    assert nms(boxes, scores, np.zeros(50, int), DetectSettings(conf=0.1, iou=0.5, max_det=4)).tolist() == [0, 5, 10, 15]
