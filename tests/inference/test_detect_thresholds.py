"""--conf and --iou really change what comes out: NMS on its own, inside the ONNX detector, and through the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from maskdet.inference.detectors import DetectSettings, OnnxDetector, nms

# Two 50x50 boxes, the second shifted 12.5 px right: overlap 37.5 x 50 = 1875, union 3125, IoU 0.6.
BOX_A = (10.0, 10.0, 60.0, 60.0)
BOX_B = (22.5, 10.0, 72.5, 60.0)


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


def test_the_two_test_boxes_overlap_with_iou_0_6():
    assert iou(BOX_A, BOX_B) == pytest.approx(0.6)


def run_nms(class_ids, **settings):
    boxes = np.array([BOX_A, BOX_B], np.float32)
    scores = np.array([0.8, 0.9], np.float32)
    return nms(boxes, scores, np.array(class_ids), DetectSettings(**settings))


# --- NMS itself --------------------------------------------------------------------------------


def test_nms_keeps_only_the_better_of_two_same_class_boxes_overlapping_more_than_iou():
    keep = run_nms([0, 0], iou=0.45)
    assert keep.tolist() == [1]  # the 0.9 box


def test_nms_keeps_both_same_class_boxes_when_their_overlap_is_under_iou():
    keep = run_nms([0, 0], iou=0.7)
    assert keep.tolist() == [1, 0]  # best first


def test_nms_is_per_class_unless_agnostic():
    assert sorted(run_nms([0, 1], iou=0.45).tolist()) == [0, 1]
    assert run_nms([0, 1], iou=0.45, agnostic_nms=True).tolist() == [1]


def test_nms_drops_boxes_under_conf_and_caps_at_max_det():
    assert run_nms([0, 1], iou=0.45, conf=0.85).tolist() == [1]
    assert run_nms([0, 1], iou=0.45, max_det=1).tolist() == [1]


def test_nms_of_nothing_is_nothing():
    keep = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), DetectSettings())
    assert len(keep) == 0


# --- the ONNX detector end to end (a real .onnx whose output is known) ------------------------


@pytest.fixture
def overlapping(kit, tmp_path):
    """detector(classes_of_the_two_boxes, **settings) -> Detections on a 128x128 frame."""
    def make(class_ids, **settings):
        boxes = [(*BOX_A, class_ids[0], 0.8), (*BOX_B, class_ids[1], 0.9)]
        path = kit.write_scripted_onnx(tmp_path / f"m{class_ids[0]}{class_ids[1]}.onnx", boxes, imgsz=128)
        detector = OnnxDetector(path, DetectSettings(**settings))
        return detector(np.zeros((128, 128, 3), np.uint8))
    return make


def test_onnx_detector_applies_the_iou_threshold(overlapping):
    strict = overlapping((0, 0), iou=0.45)
    assert len(strict) == 1 and strict.confidence[0] == pytest.approx(0.9)
    np.testing.assert_allclose(strict.xyxy[0], BOX_B)

    loose = overlapping((0, 0), iou=0.7)
    assert len(loose) == 2
    np.testing.assert_allclose(loose.xyxy, [BOX_B, BOX_A])


def test_onnx_detector_agnostic_nms_collapses_overlapping_boxes_of_different_classes(overlapping):
    per_class = overlapping((1, 2), iou=0.45)
    assert sorted(per_class.class_id.tolist()) == [1, 2]
    agnostic = overlapping((1, 2), iou=0.45, agnostic_nms=True)
    assert agnostic.class_id.tolist() == [2] and agnostic.names[2] == "mask_weared_incorrect"


def test_onnx_detector_applies_conf_and_classes(overlapping):
    assert len(overlapping((1, 2), conf=0.85)) == 1
    only = overlapping((1, 2), classes=(1,))
    assert only.class_id.tolist() == [1]


# --- the command line --------------------------------------------------------------------------


def test_cli_iou_and_agnostic_nms_change_the_records(detect, scripted_model, make_images, tmp_path, kit):
    image = make_images(tmp_path / "in", n=1, size=(128, 128))[0]
    same_class = scripted_model([(*BOX_A, 0, 0.8), (*BOX_B, 0, 0.9)], image_wh=(128, 128), imgsz=128)
    other_class = scripted_model([(*BOX_A, 0, 0.8), (*BOX_B, 1, 0.9)], image_wh=(128, 128), imgsz=128)

    runs = iter(range(100))

    def rows(weights, *flags):
        name = f"r{next(runs)}"  # a run folder each: in a reused one (--exist-ok) the records would follow the last run's
        proc = detect("--source", image, "--weights", weights, "--save-csv", "--nosave", "--name", name, *flags)
        assert proc.returncode == 0, proc.stderr
        return kit.read_csv_rows(tmp_path / "runs" / name / "predictions.csv")[1]

    assert len(rows(same_class, "--iou", "0.45")) == 1
    assert len(rows(same_class, "--iou-thres", "0.7")) == 2
    assert len(rows(other_class, "--iou", "0.45")) == 2
    kept = rows(other_class, "--iou", "0.45", "--agnostic-nms")
    assert [(r["class_name"], r["confidence"]) for r in kept] == [("without_mask", "0.9")]


def test_cli_conf_keeps_fewer_detections_when_higher(detect, model, make_images, tmp_path, kit):
    """The trained model on the same image: --conf 0.9 keeps fewer boxes than --conf 0.0001."""
    image = make_images(tmp_path / "in", n=1)[0]
    counts = {}
    for conf, name in (("0.9", "high"), (kit.low_conf, "low")):
        proc = detect("--source", image, "--weights", model.onnx, "--conf", conf, "--save-csv", "--name", name)
        assert proc.returncode == 0, proc.stderr
        fields, rows = kit.read_csv_rows(tmp_path / "runs" / name / "predictions.csv")
        assert fields == kit.record_fields
        assert all(float(r["confidence"]) >= float(conf) - 1e-4 for r in rows)  # written rounded to 4 places
        counts[name] = len(rows)
    assert counts["low"] > counts["high"], counts
    assert counts["low"] > 0


def test_cli_conf_thres_is_an_alias_and_filters_exactly(detect, scripted_model, make_images, tmp_path, kit):
    image = make_images(tmp_path / "in", n=1)[0]
    weights = scripted_model([(5, 5, 40, 40, 0, 0.95), (60, 20, 100, 70, 1, 0.5), (110, 30, 150, 90, 2, 0.1)])
    for run, (flag, conf, expected) in enumerate((("--conf", "0.3", [0.95, 0.5]), ("--conf-thres", "0.6", [0.95]),
                                                  ("--conf", "0.05", [0.95, 0.5, 0.1]))):
        proc = detect("--source", image, "--weights", weights, flag, conf, "--save-csv", "--nosave", "--name", f"r{run}")
        assert proc.returncode == 0, proc.stderr
        rows = kit.read_csv_rows(tmp_path / "runs" / f"r{run}" / "predictions.csv")[1]
        assert [float(r["confidence"]) for r in rows] == pytest.approx(expected), (flag, conf)


def test_cli_max_det_keeps_the_most_confident_boxes(detect, scripted_model, make_images, tmp_path, kit):
    image = make_images(tmp_path / "in", n=1)[0]
    weights = scripted_model([(5, 5, 40, 40, 0, 0.5), (60, 20, 100, 70, 1, 0.95), (110, 30, 150, 90, 2, 0.7)])
    proc = detect("--source", image, "--weights", weights, "--max-det", "2", "--save-csv", "--nosave")
    assert proc.returncode == 0, proc.stderr
    rows = kit.read_csv_rows(tmp_path / "runs" / "exp" / "predictions.csv")[1]
    assert [r["class_name"] for r in rows] == ["without_mask", "mask_weared_incorrect"]


def test_preprocessing_matches_opencvs_reference_blob():
    """to_blob is a faster cv2.dnn.blobFromImage(image, 1/255, swapRB=True): same tensor."""
    import cv2
    import numpy as np

    from maskdet.inference.detectors import to_blob

    image = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    np.testing.assert_allclose(to_blob(image), cv2.dnn.blobFromImage(image, 1 / 255.0, swapRB=True), atol=1e-6)
