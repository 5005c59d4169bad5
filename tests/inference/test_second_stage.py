"""The second stage (maskdet/inference/second_stage.py): a classifier of face crops whose opinion is mixed into
each box's class. It changes a class only where the classifier is sure and the detector is not, it runs on
ONNX Runtime without torch, and --second-stage off gives exactly the detector's output.

The classifier here is a real ONNX model with a known rule: it looks at the mean colour of the crop and is sure
of class 2 on red, of class 1 on blue, and unsure on grey."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic import colour_classifier

from maskdet.inference.detections import Detections, Frame
from maskdet.inference.second_stage import SecondStage, face_crop, mix

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")
ROOT = Path(__file__).resolve().parents[2]
RED, BLUE, GREY = (20, 20, 230), (230, 20, 20), (128, 128, 128)  # BGR
# (x1, y1, x2, y2, detector's class, detector's confidence), on a 160x120 image
UNSURE_ON_RED = (10, 10, 40, 40, 0, 0.40)  # the classifier is sure of class 2: becomes 2
SURE_ON_RED = (60, 10, 90, 40, 0, 0.95)  # the detector is sure: stays 0
UNSURE_ON_GREY = (110, 10, 140, 40, 1, 0.40)  # the classifier is not sure: stays 1
UNSURE_ON_BLUE = (60, 70, 90, 100, 2, 0.30)  # sure of class 1: becomes 1
BOXES = [UNSURE_ON_RED, SURE_ON_RED, UNSURE_ON_GREY, UNSURE_ON_BLUE]


def scene() -> np.ndarray:
    image = np.full((120, 160, 3), GREY, np.uint8)
    for (x1, y1, x2, y2, *_), colour in zip(BOXES, (RED, RED, GREY, BLUE)):
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    return image


def detections() -> Detections:
    boxes = np.array(BOXES, np.float32)
    return Detections(boxes[:, :4].copy(), boxes[:, 5].copy(), boxes[:, 4].astype(int), NAMES)


def test_a_crop_is_the_square_around_the_box_with_its_margin_and_edges_repeated():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 90:110] = 255  # a 20x20 white face centred at (100, 50)
    crop = face_crop(image, [90, 40, 110, 60], margin=0.5, size=40)  # 40x40 square around it: the face is the middle half
    assert crop.shape == (40, 40, 3)
    assert crop[12:28, 12:28].min() == 255 and crop[:8].max() == 0 and crop[:, -8:].max() == 0
    tall = face_crop(image, [95, 30, 105, 70], margin=0.0, size=40)  # the longer side decides: 40x40 of the frame
    assert tall.shape == (40, 40, 3) and tall[:, :10].max() == 0
    corner = image.copy()
    corner[:10, :10] = 200
    edge = face_crop(corner, [0, 0, 10, 10], margin=0.5, size=20)  # x, y from -5 to 15: the edge pixels repeated
    assert edge.shape == (20, 20, 3) and edge[:15, :15].min() == 200 and edge[15:].max() == 0 and edge[:, 15:].max() == 0


def test_a_crop_past_any_edge_is_the_frame_with_its_edges_repeated_without_copying_the_frame():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (90, 160, 3), np.uint8)
    reference = cv2.copyMakeBorder(image, 200, 200, 200, 200, cv2.BORDER_REPLICATE)
    for box in ([-4, 30, 12, 50], [150, 30, 160, 44], [60, -3, 80, 10], [60, 80, 84, 90], [0, 0, 160, 90], [-50, -50, -20, -20]):
        x1, y1, x2, y2 = box
        side = max(x2 - x1, y2 - y1) * 1.3
        left, top = int(round((x1 + x2) / 2 - side / 2)), int(round((y1 + y2) / 2 - side / 2))
        side_px = int(round(side))
        expected = reference[top + 200:top + 200 + side_px, left + 200:left + 200 + side_px]
        interpolation = cv2.INTER_AREA if side_px > 32 else cv2.INTER_LINEAR
        assert np.array_equal(face_crop(image, box, margin=0.15, size=32), cv2.resize(expected, (32, 32), interpolation=interpolation)), box
    # a 4K frame and a box on its edge: the crop gathers its own pixels, it does not pad (copy) the whole frame
    frame = np.zeros((2160, 3840, 3), np.uint8)
    tracemalloc.start()
    face_crop(frame, [0, 1000, 40, 1040], margin=0.15, size=96)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < frame.nbytes // 20


def test_mixing_changes_a_class_only_where_the_classifier_is_sure_and_the_detector_is_not():
    classifier = np.array([[0.03, 0.02, 0.95],   # sure of 2
                           [0.03, 0.02, 0.95],   # sure of 2
                           [0.30, 0.40, 0.30],   # unsure
                           [0.05, 0.90, 0.05]], np.float32)
    detector_class = np.array([0, 0, 1, 2])
    confidence = np.array([0.40, 0.95, 0.40, 0.30], np.float32)
    # weight 0.5: box 0 is [0.40, 0.30, 0.30] mixed with [0.03, 0.02, 0.95] = [0.215, 0.16, 0.625] -> 2;
    # box 1 is [0.95, 0.025, 0.025] mixed = [0.49, 0.0225, 0.4875] -> 0 (the detector was sure)
    assert mix(detector_class, confidence, classifier, 0.5).tolist() == [2, 0, 1, 1]
    assert mix(detector_class, confidence, classifier, 0.0).tolist() == [0, 0, 1, 2]  # weight 0: the detector alone
    # a confidence under 1/3 is still the detector's best class: a little weight keeps it where the classifier is unsure
    assert mix(np.array([2]), np.array([0.30], np.float32), np.array([[0.34, 0.33, 0.33]], np.float32), 0.01).tolist() == [2]
    assert mix(detector_class, confidence, classifier, 1.0).tolist() == [2, 2, 1, 1]  # weight 1: the classifier alone


def test_the_stage_on_a_frame_changes_the_unsure_boxes_the_classifier_is_sure_of(tmp_path):
    stage = SecondStage(colour_classifier(tmp_path / "colour.onnx"), NAMES)
    probabilities = stage.probabilities(scene(), detections())
    assert probabilities[[0, 1, 3]].argmax(1).tolist() == [2, 2, 1] and probabilities[[0, 1, 3]].max(1).min() > 0.9
    assert probabilities[2].max() < 0.55  # grey: unsure
    det = stage(Frame(scene(), "scene", "scene", "image"), detections())
    assert det.class_id.tolist() == [2, 0, 1, 1]
    assert det.confidence.tolist() == detections().confidence.tolist()  # the boxes and confidences stay the detector's
    assert np.array_equal(det.xyxy, detections().xyxy)


def test_a_classifier_with_its_classes_in_another_order_is_read_in_the_detectors_order(tmp_path):
    """Ultralytics numbers a classifier's classes alphabetically (by folder): mask_weared_incorrect first."""
    import onnx

    path = colour_classifier(tmp_path / "colour.onnx")
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "names":  # the same columns, named in the alphabetical order: red is now "with_mask"
            prop.value = str(dict(enumerate(sorted(NAMES))))
    onnx.save(model, str(path))
    probabilities = SecondStage(path, NAMES).probabilities(scene(), detections())
    # column 2 of the model (red) is sorted(NAMES)[2] == "without_mask", the detector's class 1
    assert probabilities[[0, 1]].argmax(1).tolist() == [1, 1]


def test_a_classifier_of_other_classes_is_refused_in_one_line(tmp_path):
    from maskdet.errors import UserError

    model = colour_classifier(tmp_path / "colour.onnx")
    with pytest.raises(UserError, match="the detector's classes"):
        SecondStage(model, ("mask", "no_mask", "other"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(UserError, match="not an ONNX model"):
        SecondStage(tmp_path / "junk.onnx", NAMES)


@pytest.mark.parametrize("sidecar, says", [
    (b"[" * 60_000, "not a second-stage settings file"),            # nested past the JSON parser's depth
    (b"\xff\xfe not text", "not a second-stage settings file"),
    (b'{"weight": 0.5, "size": 100000}', "size in 16..512"),
    (b" " * 70_000 + b"{}", "over 65,536 bytes"),                      # bounded before it is read
])
def test_a_settings_file_beside_the_classifier_is_outside_input_bounded_and_checked(tmp_path, sidecar, says):
    from maskdet.errors import UserError
    from maskdet.inference.second_stage import SIDECAR

    model = colour_classifier(tmp_path / "colour.onnx")
    (tmp_path / SIDECAR).write_bytes(sidecar)
    with pytest.raises(UserError, match=says):
        SecondStage(model, NAMES)


def test_second_stage_off_gives_exactly_the_detectors_output_and_the_stage_runs_without_torch(scripted_model, tmp_path):
    weights = scripted_model(BOXES)
    classifier = colour_classifier(tmp_path / "colour.onnx")
    script = f"""
import sys, json
sys.modules["torch"] = None  # importing torch now fails: the light install has none
sys.path.insert(0, {str(ROOT)!r})
import cv2, numpy as np
from maskdet.inference.detections import Frame
from maskdet.pipeline.step import Pipeline
from maskdet.settings import DetectionSettings, Settings
image = cv2.imread(sys.argv[1])
out = {{}}
for name, choice in (("off", "off"), ("on", {str(classifier)!r})):
    step = Pipeline(Settings(detection=DetectionSettings(weights={str(weights)!r}, second_stage=choice)))
    det = step.process(Frame(image.copy(), "scene", "scene", "image"))
    raw = step.detector(image.copy())
    out[name] = {{"classes": det.class_id.tolist(), "xyxy": det.xyxy.tolist(), "conf": det.confidence.tolist(),
                  "raw": [raw.class_id.tolist(), raw.xyxy.tolist(), raw.confidence.tolist()]}}
print(json.dumps(out))
"""
    picture = tmp_path / "scene.png"
    cv2.imwrite(str(picture), scene())
    proc = subprocess.run([sys.executable, "-c", script, str(picture)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    off, on = out["off"], out["on"]
    assert [off["classes"], off["xyxy"], off["conf"]] == off["raw"]  # exactly the detector's, to the last bit
    assert sorted((round(c, 3), k) for c, k in zip(on["conf"], on["classes"])) == [(0.3, 1), (0.4, 1), (0.4, 2), (0.95, 0)]
    assert on["xyxy"] == off["xyxy"] and on["conf"] == off["conf"]


def test_detect_py_takes_second_stage_and_off(detect, scripted_model, tmp_path, kit):
    weights = scripted_model(BOXES)
    classifier = colour_classifier(tmp_path / "colour.onnx")
    picture = tmp_path / "scene.png"
    cv2.imwrite(str(picture), scene())
    for name, choice in (("on", str(classifier)), ("off", "off")):
        proc = detect("--source", picture, "--weights", weights, "--second-stage", choice, "--save-csv", "--name", name)
        assert proc.returncode == 0, proc.stderr
    on = kit.read_csv_rows(tmp_path / "runs" / "on" / "predictions.csv")[1]
    off = kit.read_csv_rows(tmp_path / "runs" / "off" / "predictions.csv")[1]
    by_conf = lambda rows: sorted((round(float(r["confidence"]), 2), r["x1"][:4], r["class_name"]) for r in rows)  # noqa: E731
    assert [c for *_, c in by_conf(off)] == [NAMES[b[4]] for b in sorted(BOXES, key=lambda b: (b[5], str(b[0])[:4]))]
    changed = {(conf, cls_off, cls_on) for (conf, _, cls_off), (_, _, cls_on) in zip(by_conf(off), by_conf(on)) if cls_off != cls_on}
    assert changed == {(0.4, "with_mask", "mask_weared_incorrect"), (0.3, "mask_weared_incorrect", "without_mask")}
    missing = detect("--source", picture, "--weights", weights, "--second-stage", tmp_path / "none.onnx")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr and "no such second-stage model" in missing.stderr
