"""What detect.py writes: annotated images in numbered run folders, CSV/JSON records in pixels,
YOLO labels labelImg opens, crops per class; and which inputs a folder, a glob or a list selects."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdet.data.labels import Severity, read_label_file

# Boxes the scripted model reports on a 160x120 image: (x1, y1, x2, y2, class_id, score), in image pixels.
BOXES = [(10, 20, 50, 80, 0, 0.91), (60, 10, 110, 70, 1, 0.82), (115, 40, 155, 110, 2, 0.73)]


@pytest.fixture
def scene(make_images, tmp_path) -> Path:
    """One 160x120 synthetic image, tmp_path/in/scene0.png."""
    return make_images(tmp_path / "in", n=1)[0]


@pytest.fixture
def known(scripted_model) -> Path:
    return scripted_model(BOXES)


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


# --- run folders and annotated images ----------------------------------------------------------


def test_an_image_in_gives_an_annotated_image_in_exp_then_exp2(detect, model, scene, tmp_path, kit):
    runs = tmp_path / "runs"
    first = ok(detect("--source", scene, "--weights", model.onnx, "--conf", kit.low_conf))
    assert f"results saved to {runs / 'exp'}" in first.stdout
    assert "image 1/1" in first.stdout and "1 frames from 1 inputs" in first.stdout
    out = cv2.imread(str(runs / "exp" / "scene0.png"))
    original = cv2.imread(str(scene))
    assert out is not None and out.shape == original.shape
    assert np.abs(out.astype(int) - original).sum() > 0, "boxes should be drawn on the output"

    second = ok(detect("--source", scene, "--weights", model.onnx, "--conf", kit.low_conf))
    assert f"results saved to {runs / 'exp2'}" in second.stdout
    assert (runs / "exp2" / "scene0.png").exists()


def test_name_and_exist_ok_choose_the_run_folder(detect, known, scene, tmp_path):
    ok(detect("--source", scene, "--weights", known, "--name", "mine"))
    ok(detect("--source", scene, "--weights", known, "--name", "mine"))
    ok(detect("--source", scene, "--weights", known, "--name", "mine", "--exist-ok"))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mine", "mine2"]


def test_boxes_are_drawn_in_the_class_colours(detect, known, scene, tmp_path):
    from maskdet.inference.visualize import NAMED_COLORS

    ok(detect("--source", scene, "--weights", known, "--line-thickness", "3", "--hide-labels"))
    out = cv2.imread(str(tmp_path / "runs" / "exp" / "scene0.png"))
    for x1, y1, _, y2, cls, _ in BOXES:
        colour = NAMED_COLORS[("with_mask", "without_mask", "mask_weared_incorrect")[cls]]
        left_edge = out[y1 + 5:y2 - 5, x1].astype(int)  # the middle of the 3 px line
        assert (np.abs(left_edge - colour).max(axis=1) <= 2).mean() > 0.9, (cls, left_edge[:3])


def test_label_flags_choose_what_is_written_beside_the_boxes(detect, known, scene, tmp_path):
    def draw(*flags):
        name = "_".join(f.strip("-") for f in flags) or "default"
        ok(detect("--source", scene, "--weights", known, "--line-thickness", "2", "--name", name, *flags))
        return cv2.imread(str(tmp_path / "runs" / name / "scene0.png")).astype(int)

    original = cv2.imread(str(scene)).astype(int)
    default, no_conf, no_labels = draw(), draw("--hide-conf"), draw("--hide-labels")
    x1, y1, x2, y2 = BOXES[1][:4]  # a box with room for its tag above it
    tag = (slice(0, y1 - 2), slice(x1 + 3, x2 - 3))  # above the box, clear of its outline
    assert np.abs(default[tag] - original[tag]).sum() > 0, "the 'name 0.82' tag is drawn above the box"
    assert np.abs(default[tag] - no_conf[tag]).sum() > 0, "--hide-conf leaves out the confidence"
    assert np.abs(no_labels[tag] - original[tag]).sum() == 0, "--hide-labels draws no tag"
    assert np.abs(no_labels - original).sum() > 0, "... but still the boxes"


def test_nosave_writes_no_image(detect, known, scene, tmp_path):
    ok(detect("--source", scene, "--weights", known, "--nosave", "--save-csv"))
    run_dir = tmp_path / "runs" / "exp"
    assert sorted(p.name for p in run_dir.iterdir()) == ["predictions.csv"]


# --- records -----------------------------------------------------------------------------------


def test_csv_and_json_hold_one_record_per_detection_in_pixels(detect, known, scene, tmp_path, kit):
    ok(detect("--source", scene, "--weights", known, "--save-csv", "--save-json"))
    run_dir = tmp_path / "runs" / "exp"
    fields, rows = kit.read_csv_rows(run_dir / "predictions.csv")
    assert fields == kit.record_fields
    records = kit.read_json(run_dir / "predictions.json")
    assert isinstance(records, list) and len(records) == len(rows) == len(BOXES)
    for row, record, (x1, y1, x2, y2, cls, score) in zip(rows, records, BOXES):
        assert list(record) == kit.record_fields
        assert record["source"] == row["source"] == str(scene)
        assert record["frame"] == int(row["frame"]) == 0
        assert record["timestamp"] == float(row["timestamp"]) == 0.0
        assert record["class_id"] == int(row["class_id"]) == cls
        assert record["class_name"] == row["class_name"] == kit.names[cls]
        assert record["confidence"] == pytest.approx(float(row["confidence"])) == pytest.approx(score, abs=1e-4)
        for key, expected in zip(("x1", "y1", "x2", "y2"), (x1, y1, x2, y2)):
            assert record[key] == pytest.approx(float(row[key])) == pytest.approx(expected, abs=0.2), key


def test_classes_keeps_only_those_ids(detect, known, model, scene, tmp_path, kit):
    ok(detect("--source", scene, "--weights", known, "--classes", "1", "--save-csv", "--name", "one"))
    rows = kit.read_csv_rows(tmp_path / "runs" / "one" / "predictions.csv")[1]
    assert [r["class_name"] for r in rows] == ["without_mask"]

    ok(detect("--source", scene, "--weights", known, "--classes", "1", "2", "--save-csv", "--name", "two"))
    rows = kit.read_csv_rows(tmp_path / "runs" / "two" / "predictions.csv")[1]
    assert sorted(r["class_id"] for r in rows) == ["1", "2"]

    ok(detect("--source", scene, "--weights", model.onnx, "--conf", kit.low_conf, "--classes", "1", "--save-csv", "--name", "trained"))
    rows = kit.read_csv_rows(tmp_path / "runs" / "trained" / "predictions.csv")[1]
    assert {r["class_id"] for r in rows} <= {"1"}


def test_classes_out_of_range_is_a_one_line_error(detect, known, scene, tools):
    tools.assert_one_line_error(detect("--source", scene, "--weights", known, "--classes", "3"), "--classes")


# --- YOLO labels and crops ---------------------------------------------------------------------


def test_save_txt_writes_yolo_labels_and_classes_txt_that_parse_cleanly(detect, known, scene, tmp_path):
    ok(detect("--source", scene, "--weights", known, "--save-txt"))
    labels = tmp_path / "runs" / "exp" / "labels"
    assert (labels / "classes.txt").read_text().splitlines() == ["with_mask", "without_mask", "mask_weared_incorrect"]
    lines = (labels / "scene0.txt").read_text().splitlines()
    assert len(lines) == len(BOXES)
    for line, (x1, y1, x2, y2, cls, _) in zip(lines, BOXES):
        fields = line.split()
        assert len(fields) == 5
        assert int(fields[0]) == cls
        expected = ((x1 + x2) / 2 / 160, (y1 + y2) / 2 / 120, (x2 - x1) / 160, (y2 - y1) / 120)
        assert [float(v) for v in fields[1:]] == pytest.approx(expected, abs=1e-3)
    parsed = read_label_file(labels / "scene0.txt", num_classes=3)
    assert not [i for i in parsed.issues if i.severity == Severity.ERROR], parsed.issues
    assert [b.cls for b in (line.box for line in parsed.lines)] == [0, 1, 2]


def test_save_txt_from_the_trained_model_is_normalised(detect, model, make_images, tmp_path, kit):
    make_images(tmp_path / "in", n=2)
    ok(detect("--source", tmp_path / "in", "--weights", model.onnx, "--conf", kit.low_conf, "--save-txt"))
    files = sorted((tmp_path / "runs" / "exp" / "labels").glob("scene*.txt"))
    assert [f.name for f in files] == ["scene0.txt", "scene1.txt"]
    for f in files:
        rows = [line.split() for line in f.read_text().splitlines()]
        assert rows, f"{f} should have boxes at --conf {kit.low_conf}"
        assert all(len(r) == 5 and r[0] in ("0", "1", "2") and all(0 <= float(v) <= 1 for v in r[1:]) for r in rows), rows
        assert not [i for i in read_label_file(f, num_classes=3).issues if i.severity == Severity.ERROR]


def test_save_conf_adds_the_confidence_as_a_sixth_field(detect, known, scene, tmp_path):
    ok(detect("--source", scene, "--weights", known, "--save-txt", "--save-conf"))
    rows = [line.split() for line in (tmp_path / "runs" / "exp" / "labels" / "scene0.txt").read_text().splitlines()]
    assert [len(r) for r in rows] == [6, 6, 6]
    assert [float(r[5]) for r in rows] == pytest.approx([b[5] for b in BOXES], abs=1e-4)


def test_save_crop_writes_each_face_into_a_folder_per_class(detect, known, scene, tmp_path):
    ok(detect("--source", scene, "--weights", known, "--save-crop"))
    crops = tmp_path / "runs" / "exp" / "crops"
    found = sorted(str(p.relative_to(crops)) for p in crops.rglob("*.jpg"))
    assert found == ["mask_weared_incorrect/scene0_2.jpg", "with_mask/scene0_0.jpg", "without_mask/scene0_1.jpg"]
    for path, (x1, y1, x2, y2, *_) in zip(sorted(crops.rglob("*.jpg"), key=lambda p: p.stem), BOXES):
        crop = cv2.imread(str(path))
        assert crop.shape[:2] == (y2 - y1, x2 - x1), path


# --- which inputs ------------------------------------------------------------------------------


def test_a_folder_is_every_image_in_it(detect, model, make_images, tmp_path, kit):
    make_images(tmp_path / "in", n=3)
    (tmp_path / "in" / "notes.md").write_text("not an image")
    proc = ok(detect("--source", tmp_path / "in", "--weights", model.onnx, "--conf", kit.low_conf))
    assert [line.split(":")[0] for line in proc.stdout.splitlines() if line.startswith("image ")] == [
        f"image {i}/3 {tmp_path / 'in' / f'scene{i - 1}.png'}" for i in (1, 2, 3)]
    assert "3 frames from 3 inputs" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "runs" / "exp").iterdir()) == ["scene0.png", "scene1.png", "scene2.png"]


def test_a_glob_selects_what_it_matches(detect, known, make_images, tmp_path, kit):
    make_images(tmp_path / "in", n=2, suffix=".png")
    make_images(tmp_path / "in" / "sub", n=1, suffix=".jpg")
    proc = ok(detect("--source", f"{tmp_path / 'in'}/*.png", "--weights", known, "--save-csv"))
    assert "2 frames from 2 inputs" in proc.stdout
    sources = {r["source"] for r in kit.read_csv_rows(tmp_path / "runs" / "exp" / "predictions.csv")[1]}
    assert sources == {str(tmp_path / "in" / "scene0.png"), str(tmp_path / "in" / "scene1.png")}

    proc = ok(detect("--source", f"{tmp_path / 'in'}/**/*.jpg", "--weights", known, "--save-csv"))
    assert "1 frames from 1 inputs" in proc.stdout


def test_a_txt_list_reads_each_entry_relative_to_the_list(detect, known, make_images, make_video, tmp_path, kit):
    make_images(tmp_path / "data" / "photos", n=2)
    make_video(tmp_path / "data" / "clip.avi", frames=5)
    listing = tmp_path / "data" / "inputs.txt"
    listing.write_text("# what to check today\nphotos/scene1.png\n\nclip.avi  # the door camera\nphotos/scene0.png\n")
    proc = ok(detect("--source", listing, "--weights", known, "--save-csv"))
    assert "7 frames from 3 inputs" in proc.stdout
    rows = kit.read_csv_rows(tmp_path / "runs" / "exp" / "predictions.csv")[1]
    order = list(dict.fromkeys(r["source"] for r in rows))
    assert order == [str(tmp_path / "data" / "photos" / "scene1.png"), str(tmp_path / "data" / "clip.avi"),
                     str(tmp_path / "data" / "photos" / "scene0.png")]


def test_pt_weights_run_through_ultralytics_with_the_same_records(detect, model, scene, tmp_path, kit):
    proc = ok(detect("--source", scene, "--weights", model.pt, "--imgsz", "64", "--device", "cpu", "--conf", kit.low_conf,
                     "--save-csv", "--save-txt", timeout=300))
    assert "image 1/1" in proc.stdout
    fields, rows = kit.read_csv_rows(tmp_path / "runs" / "exp" / "predictions.csv")
    assert fields == kit.record_fields and rows
    for r in rows:
        assert r["class_name"] == kit.names[int(r["class_id"])]
        assert 0 <= float(r["x1"]) <= float(r["x2"]) <= 160 and 0 <= float(r["y1"]) <= float(r["y2"]) <= 120
    labels = (tmp_path / "runs" / "exp" / "labels" / "scene0.txt").read_text().splitlines()
    assert len(labels) == len(rows)
