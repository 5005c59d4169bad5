"""Both kinds of Ultralytics ONNX export run through detect.py and val.py: the classic output
(1, 4 + classes, anchors) that needs NMS, and YOLO26's end-to-end output (1, k, 6) from its NMS-free
head, with the same results as the .pt they came from."""

from __future__ import annotations

import shutil
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from maskdet.inference.detectors import DetectSettings, OnnxDetector, TorchDetector, is_end2end

# Two same-class boxes overlapping with IoU 0.6 (model pixels of a 160x160 input; the image is
# 160x120, so the letterbox adds 20 px of grey above and below).
BOX_A = (20.0, 40.0, 100.0, 120.0)
BOX_B = (36.0, 40.0, 116.0, 120.0)
IMAGE_WH = (160, 120)


def in_image(box):
    x1, y1, x2, y2 = box
    return (x1, y1 - 20, x2, y2 - 20)


@pytest.fixture
def end2end(kit, tmp_path):
    """end2end(boxes, **settings) -> Detections of a scripted end-to-end model on a 160x120 frame."""
    def make(boxes, **settings):
        path = kit.write_scripted_end2end_onnx(tmp_path / "e2e.onnx", boxes, imgsz=160)
        detector = OnnxDetector(path, DetectSettings(**settings))
        assert detector.end2end
        return detector(np.zeros((IMAGE_WH[1], IMAGE_WH[0], 3), np.uint8))
    return make


def test_an_end2end_export_is_told_by_its_metadata_and_else_by_its_output_shape():
    assert is_end2end({"end2end": "True"}, [1, 300, 6], 3)
    assert not is_end2end({"end2end": "False"}, [1, 7, 8400], 3)
    assert is_end2end({}, [1, 300, 6], 3)  # an export without the key: rows of 6
    assert not is_end2end({}, [1, 7, 8400], 3)
    assert not is_end2end({}, [1, 6, 8400], 2)  # 4 + 2 classes: the classic layout, however many anchors


def test_end2end_output_is_taken_as_is_no_nms_and_mapped_to_image_pixels(end2end):
    det = end2end([(*BOX_A, 0, 0.8), (*BOX_B, 0, 0.9)], iou=0.45)
    # NMS at IoU 0.45 would drop BOX_A; the NMS-free head's boxes are all kept, best first
    assert det.class_id.tolist() == [0, 0]
    np.testing.assert_allclose(det.confidence, [0.9, 0.8], rtol=1e-6)
    np.testing.assert_allclose(det.xyxy, [in_image(BOX_B), in_image(BOX_A)], atol=1e-4)


def test_end2end_output_applies_conf_classes_and_max_det(end2end):
    boxes = [(*BOX_A, 1, 0.3), (*BOX_B, 2, 0.9), (10.0, 30.0, 40.0, 60.0, 2, 0.6)]
    assert end2end(boxes, conf=0.5).confidence.tolist() == pytest.approx([0.9, 0.6])
    assert end2end(boxes, classes=(1,)).class_id.tolist() == [1]
    assert end2end(boxes, max_det=2).confidence.tolist() == pytest.approx([0.9, 0.6])
    assert len(end2end(boxes, conf=0.95)) == 0  # the zero rows padding the top-k are never boxes


def test_detect_cli_writes_the_boxes_of_an_end2end_model(detect, kit, tmp_path):
    weights = kit.write_scripted_end2end_onnx(tmp_path / "e2e.onnx", [(*BOX_A, 1, 0.8), (*BOX_B, 2, 0.7)], imgsz=160)
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), kit.synthetic_frame(0, IMAGE_WH))
    proc = detect("--source", image, "--weights", weights, "--save-json", "--classes", "1", "2", "--conf", "0.75")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    records = kit.read_json(tmp_path / "runs" / "exp" / "predictions.json")
    assert [(r["class_name"], r["confidence"]) for r in records] == [("without_mask", pytest.approx(0.8))]
    assert [records[0][k] for k in ("x1", "y1", "x2", "y2")] == pytest.approx(in_image(BOX_A), abs=0.01)


def test_val_py_scores_an_end2end_onnx_that_finds_every_face_at_full_map(kit, tmp_path):
    """Ultralytics' validator reads the end-to-end layout: a model that returns the ground truth scores the maximum."""
    names = kit.names
    boxes = [(20.0, 30.0, 60.0, 80.0, 0), (90.0, 40.0, 130.0, 95.0, 1), (100.0, 5.0, 150.0, 35.0, 2)]
    for split in ("val", "test"):
        for i in range(2):  # every image the same size, so one constant output fits them all
            (tmp_path / "data" / split / "images").mkdir(parents=True, exist_ok=True)
            (tmp_path / "data" / split / "labels").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "data" / split / "images" / f"im{i}.png"), kit.synthetic_frame(i, IMAGE_WH))
            lines = [f"{c} {(x1 + x2) / 2 / 160} {(y1 + y2) / 2 / 120} {(x2 - x1) / 160} {(y2 - y1) / 120}"
                     for x1, y1, x2, y2, c in boxes]
            (tmp_path / "data" / split / "labels" / f"im{i}.txt").write_text("\n".join(lines) + "\n")
    data = tmp_path / "data.yaml"
    data.write_text("path: data\ntrain: val/images\nval: val/images\ntest: test/images\nnames:\n" +
                    "".join(f"  {i}: {n}\n" for i, n in enumerate(names)))
    model_boxes = [(x1, y1 + 20, x2, y2 + 20, c, 0.9) for x1, y1, x2, y2, c in boxes]
    weights = kit.write_scripted_end2end_onnx(tmp_path / "e2e.onnx", model_boxes, imgsz=160)
    proc = subprocess.run([sys.executable, str(kit.root / "val.py"), "--weights", str(weights), "--data", str(data),
                           "--split", "test", "--imgsz", "160", "--project", str(tmp_path / "runs"), "--no-plots"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-3000:]
    metrics = pd.read_csv(tmp_path / "runs" / "exp" / "metrics.csv", index_col="class")
    assert metrics.loc["all", "mAP50"] == pytest.approx(0.995, abs=1e-3)  # Ultralytics' ceiling (101-point curve)
    assert metrics.loc["all", "mAP50-95"] > 0.9
    assert metrics.loc["mask_weared_incorrect", "instances"] == 2


# --- real models: the .onnx gives what the .pt gives ---------------------------------------------


def assert_same_detections(onnx_det, pt_det, conf: float) -> None:
    """Each detection clearly above conf in one is in the other: same class, box within 0.5 px, score
    within 1e-3 (noise of float32 kernels); boxes at the threshold may fall either side."""
    def missing(a, b):
        lost = []
        for i in np.flatnonzero(a.confidence > conf + 1e-3):
            near = ((b.class_id == a.class_id[i]) & (np.abs(b.xyxy - a.xyxy[i]).max(1) < 0.5)
                    & (np.abs(b.confidence - a.confidence[i]) < 1e-3))
            if not near.any():
                lost.append((a.class_id[i], a.confidence[i], a.xyxy[i].round(1).tolist()))
        return lost

    assert len(onnx_det) > 0 and len(pt_det) > 0
    assert missing(onnx_det, pt_det) == [], "in the .onnx's, not the .pt's"
    assert missing(pt_det, onnx_det) == [], "in the .pt's, not the .onnx's"


@pytest.mark.parametrize("kind", ["yolo11 classic", "yolo26 classic", "yolo26 end2end"])
def test_the_onnx_export_detects_what_the_pt_detects(kind, request, kit):
    made = request.getfixturevalue("model" if kind.startswith("yolo11") else "yolo26_model")
    onnx_path = made.end2end if kind.endswith("end2end") else made.onnx
    settings = DetectSettings(conf=float(kit.low_conf), iou=0.7, max_det=300)
    onnx_detector = OnnxDetector(onnx_path, settings)
    assert onnx_detector.end2end == kind.endswith("end2end")
    pt_detector = TorchDetector(made.pt, settings, imgsz=made.imgsz, device="cpu")
    if kind.endswith("end2end"):
        pt_detector.kwargs["nms"] = False  # Ultralytics' switch to the NMS-free head, as the export runs it
    for seed in range(3):
        frame = kit.synthetic_frame(seed, (96, 64))
        assert_same_detections(onnx_detector(frame), pt_detector(frame), settings.conf)


def test_a_yolo26_end2end_export_runs_through_detect_py_and_val_py(yolo26_model, detect, kit, tmp_path):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), kit.synthetic_frame(1, IMAGE_WH))
    proc = detect("--source", image, "--weights", yolo26_model.end2end, "--conf", kit.low_conf, "--save-csv")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    _, rows = kit.read_csv_rows(tmp_path / "runs" / "exp" / "predictions.csv")
    assert rows and {r["class_name"] for r in rows} <= set(kit.names)

    tables = {}
    for name, weights, extra in (("onnx", yolo26_model.end2end, []), ("pt", yolo26_model.pt, ["--end2end"])):
        proc = subprocess.run([sys.executable, str(kit.root / "val.py"), "--weights", str(weights), "--data",
                               str(yolo26_model.data), "--split", "val", "--imgsz", "64", "--project",
                               str(tmp_path / "val"), "--name", name, "--no-plots", *extra],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-3000:]
        assert f"{weights.name} on the val split" in proc.stdout
        tables[name] = pd.read_csv(tmp_path / "val" / name / "metrics.csv", index_col="class")
    pd.testing.assert_frame_equal(tables["onnx"], tables["pt"], atol=0.01, check_exact=False)


def test_end2end_export_of_a_model_without_an_nms_free_head_is_a_one_line_error(model, tmp_path, tools):
    pt = tmp_path / "yolo11.pt"
    shutil.copy(model.pt, pt)
    proc = subprocess.run([sys.executable, str(tools.repo_root / "export.py"), "--weights", str(pt), "--imgsz", "64",
                           "--end2end"], capture_output=True, text=True, timeout=300)
    tools.assert_one_line_error(proc, pt, "--end2end", "YOLO26")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["yolo11.pt"]
