"""maskdet.data.voc: Pascal VOC XML (labelImg, Kaggle) to YOLO boxes.

parse_voc names the file and line of any problem; voc_to_boxes normalises by the real image size,
clips boxes that cross the edge (and counts them), drops empty or inverted ones (and reports
them), renames classes with --map and counts the classes it does not know.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maskdet.data.voc import ConversionStats, VocAnnotation, VocObject, parse_voc, voc_to_boxes
from maskdet.errors import UserError

IDS = {"with_mask": 0, "without_mask": 1, "mask_weared_incorrect": 2}


def annotation(*objects: tuple[str, float, float, float, float], path: str = "a.xml") -> VocAnnotation:
    objs = tuple(VocObject(name, *coords, line=10 + i) for i, (name, *coords) in enumerate(objects))
    return VocAnnotation(Path(path), "a.png", 100, 50, objs)


# --- parse_voc ---------------------------------------------------------------------------------


def test_parse_reads_filename_size_and_objects_with_their_lines(tmp_path, make_voc, tools):
    path = make_voc(tmp_path / "a.xml", [("with_mask", 1, 2, 30, 40), ("without_mask", 5.5, 6, 7, 8)], filename="a.png", size=(64, 48))
    ann = parse_voc(path)
    assert ann.path == path and ann.filename == "a.png" and (ann.width, ann.height) == (64, 48)
    text = path.read_text()
    assert ann.objects == (
        VocObject("with_mask", 1, 2, 30, 40, line=tools.bndbox_line(text, 0)),
        VocObject("without_mask", 5.5, 6, 7, 8, line=tools.bndbox_line(text, 1)),
    )


def test_missing_size_is_allowed(tmp_path, make_voc):
    ann = parse_voc(make_voc(tmp_path / "a.xml", [("with_mask", 1, 2, 3, 4)]))
    assert ann.width is None and ann.height is None and len(ann.objects) == 1


def test_annotation_without_objects_is_a_background(tmp_path, make_voc):
    assert parse_voc(make_voc(tmp_path / "a.xml", [], size=(10, 10))).objects == ()


@pytest.mark.parametrize("width", ["abc", "nan", "1e999", ""])
def test_unusable_size_is_ignored_not_fatal(tmp_path, width):
    # <size> is only a hint: the converter measures the image itself.
    path = tmp_path / "a.xml"
    path.write_text(f"<annotation><size><width>{width}</width><height>10</height></size></annotation>")
    ann = parse_voc(path)
    assert ann.width is None and ann.height is None


def test_malformed_xml_names_file_and_line(tmp_path, make_voc):
    path = make_voc(tmp_path / "bad.xml", [("with_mask", 1, 2, 3, 4)])
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if "<name>" in line)
    lines[i] = lines[i].replace("</name>", "</nmae>")
    path.write_text("\n".join(lines))
    with pytest.raises(UserError) as err:
        parse_voc(path)
    assert str(err.value).startswith(f"{path}:{i + 1}: not valid XML")
    assert (err.value.path, err.value.line) == (path, i + 1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content", ["", "not xml at all", "<annotation><object>"])
def test_empty_or_truncated_xml_is_a_user_error(tmp_path, content):
    path = tmp_path / "bad.xml"
    path.write_text(content)
    with pytest.raises(UserError, match="not valid XML") as err:
        parse_voc(path)
    assert str(path) in str(err.value)


def test_wrong_root_element_is_reported(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text("<?xml version='1.0'?>\n<labels/>\n")
    with pytest.raises(UserError, match=r"a\.xml:2: root element is <labels>"):
        parse_voc(path)


def test_unreadable_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read") as err:
        parse_voc(tmp_path / "missing.xml")
    assert "missing.xml" in str(err.value)


@pytest.mark.parametrize(
    "object_xml, message, line",
    [
        ("<object>\n<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>", "<object> without a <name>", 2),
        ("<object>\n<name>with_mask</name></object>", "<object> 'with_mask' has no <bndbox>", 2),
        ("<object><name>with_mask</name>\n<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax></bndbox></object>", "<ymax> missing", 3),
        ("<object><name>with_mask</name><bndbox>\n<xmin>1</xmin>\n<ymin>one</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>",
         "<ymin> is not a number: 'one'", 4),
    ],
)
def test_an_incomplete_object_is_skipped_with_file_and_line_and_the_other_faces_kept(tmp_path, object_xml, message, line):
    path = tmp_path / "a.xml"
    good = "<object><name>without_mask</name><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>9</xmax><ymax>12</ymax></bndbox></object>"
    path.write_text(f"<annotation>\n{object_xml}\n{good}\n</annotation>\n")
    ann = parse_voc(path)
    assert ann.skipped == (f"skipped box: {path}:{line}: {message}",)
    assert [(o.name, o.xmin, o.ymin, o.xmax, o.ymax) for o in ann.objects] == [("without_mask", 3, 4, 9, 12)]


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_non_finite_coordinate_is_rejected_with_its_line(tmp_path, value):
    # float() accepts these; a NaN corner must not become a "nan" in a YOLO label file.
    path = tmp_path / "a.xml"
    path.write_text(f"<annotation><object><name>with_mask</name><bndbox>\n<xmin>{value}</xmin>"
                    "<ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>\n")
    ann = parse_voc(path)
    assert not ann.objects and len(ann.skipped) == 1
    assert ann.skipped[0].startswith(f"skipped box: {path}:2: <xmin>")


def test_external_entities_are_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("with_mask")
    path = tmp_path / "a.xml"
    path.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]>\n'
                    "<annotation><object><name>&x;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
                    "</bndbox></object></annotation>\n")
    try:
        ann = parse_voc(path)
    except UserError:
        return  # refusing the file is fine too
    assert all(obj.name != "with_mask" for obj in ann.objects)


# --- voc_to_boxes ------------------------------------------------------------------------------


def test_boxes_are_normalised_by_the_real_image_size_not_the_xml_size():
    ann = annotation(("with_mask", 10, 5, 30, 25))  # <size> says 100x50
    boxes, stats = voc_to_boxes(ann, (200, 100), IDS)
    assert len(boxes) == 1
    assert boxes[0].cls == 0
    assert boxes[0].edges == pytest.approx((0.05, 0.05, 0.15, 0.25))
    assert (stats.boxes_in, stats.boxes_out, stats.clipped, stats.dropped) == (1, 1, 0, 0)
    assert stats.per_class == {"with_mask": 1}


def test_box_crossing_the_edge_is_clipped_and_counted():
    # Kaggle's annotations have xmax = width + 1 on faces at the border.
    ann = annotation(("without_mask", 80, 40, 101, 51), ("with_mask", -3, 0, 10, 10), ("with_mask", 1, 1, 5, 5))
    boxes, stats = voc_to_boxes(ann, (100, 50), IDS)
    assert [b.edges for b in boxes] == [pytest.approx((0.8, 0.8, 1.0, 1.0)), pytest.approx((0.0, 0.0, 0.1, 0.2)),
                                        pytest.approx((0.01, 0.02, 0.05, 0.1))]
    assert stats.clipped == 2 and stats.dropped == 0 and stats.boxes_out == 3
    assert stats.notes == ["a.xml:10: clipped box 'without_mask' to the 100x50 image",
                           "a.xml:11: clipped box 'with_mask' to the 100x50 image"]


def test_box_on_the_edge_exactly_is_not_clipped():
    boxes, stats = voc_to_boxes(annotation(("with_mask", 0, 0, 100, 50)), (100, 50), IDS)
    assert stats.clipped == 0 and boxes[0].edges == (0.0, 0.0, 1.0, 1.0)


@pytest.mark.parametrize("coords", [(30, 10, 20, 40), (10, 40, 20, 30), (10, 10, 10, 40), (10, 10, 40, 10)])
def test_inverted_or_empty_box_is_dropped_and_reported(coords):
    ann = annotation(("with_mask", 1, 1, 5, 5), ("without_mask", *coords))
    boxes, stats = voc_to_boxes(ann, (100, 50), IDS)
    assert len(boxes) == 1 and stats.dropped == 1 and stats.boxes_out == 1 and stats.boxes_in == 2
    assert len(stats.notes) == 1
    assert stats.notes[0].startswith("a.xml:11: dropped empty or inverted box 'without_mask'")


def test_box_entirely_outside_the_image_is_dropped_and_reported():
    boxes, stats = voc_to_boxes(annotation(("with_mask", 120, 10, 150, 20)), (100, 50), IDS)
    assert boxes == [] and stats.dropped == 1 and stats.clipped == 0
    assert "outside the 100x50 image" in stats.notes[0]


def test_trim_top_shaves_the_forehead_off_the_top_and_keeps_the_rest():
    # ILC 2021 draws faces ~15 % taller at the top than Kaggle: 0.13 of the height brings them back.
    ann = annotation(("with_mask", 10, 0, 30, 40), ("without_mask", 50, 10, 60, 30))
    boxes, stats = voc_to_boxes(ann, (100, 50), IDS, trim_top=0.25)
    assert [b.edges for b in boxes] == [pytest.approx((0.1, 0.2, 0.3, 0.8)), pytest.approx((0.5, 0.3, 0.6, 0.6))]
    assert stats.clipped == 0 and stats.notes == []


def test_trim_top_of_a_box_above_the_edge_still_clips_it():
    boxes, stats = voc_to_boxes(annotation(("with_mask", 10, -20, 30, 20)), (100, 50), IDS, trim_top=0.25)
    assert boxes[0].edges == pytest.approx((0.1, 0.0, 0.3, 0.4)) and stats.clipped == 1


def test_map_renames_before_matching():
    ann = annotation(("mask", 1, 1, 5, 5), ("no-mask", 1, 1, 6, 6), ("with_mask", 2, 2, 7, 7))
    boxes, stats = voc_to_boxes(ann, (100, 50), IDS, {"mask": "with_mask", "no-mask": "without_mask"})
    assert [b.cls for b in boxes] == [0, 1, 0]
    assert stats.per_class == {"with_mask": 2, "without_mask": 1}
    assert not stats.unknown


def test_unknown_class_is_counted_under_its_original_name_and_not_converted():
    ann = annotation(("face", 1, 1, 5, 5), ("face", 2, 2, 6, 6), ("helmet", 1, 1, 5, 5), ("with_mask", 1, 1, 5, 5))
    boxes, stats = voc_to_boxes(ann, (100, 50), IDS, {"helmet": "hard_hat"})
    assert [b.cls for b in boxes] == [0]
    assert stats.unknown == {"face": 2, "helmet": 1}
    assert (stats.boxes_in, stats.boxes_out) == (4, 1)


def test_stats_add_up():
    _, a = voc_to_boxes(annotation(("with_mask", 1, 1, 101, 5), ("x", 1, 1, 2, 2)), (100, 50), IDS)
    _, b = voc_to_boxes(annotation(("with_mask", 5, 5, 1, 1), ("without_mask", 1, 1, 5, 5)), (100, 50), IDS)
    a.add(b)
    assert (a.boxes_in, a.boxes_out, a.clipped, a.dropped) == (4, 2, 1, 1)
    assert a.per_class == {"with_mask": 1, "without_mask": 1} and a.unknown == {"x": 1}
    assert len(a.notes) == 2


def test_box_clipped_to_a_sliver_is_dropped_not_written_with_zero_size():
    # 0.00001 px of a 100 px image is written as width 0.000000: a degenerate box check.py would flag.
    boxes, stats = voc_to_boxes(annotation(("with_mask", 99.99999, 10, 130, 20), ("with_mask", 1, 1, 5, 5)), (100, 50), IDS)
    assert len(boxes) == 1 and stats.dropped == 1 and stats.clipped == 0
    assert stats.notes == ["a.xml:10: dropped box 'with_mask' lying outside the 100x50 image"]


def test_clip_to_image_counts_and_notes_fractions_as_it_does_pixels():
    # import_yolo.py runs YOLO boxes (fractions of the image) through the same code as VOC pixels.
    from maskdet.data.voc import clip_to_image

    stats = ConversionStats()
    assert clip_to_image((-0.1, 0.2, 0.5, 0.4), (1.0, 1.0), stats, "p.txt:3", "mask", "the image") == (0.0, 0.2, 0.5, 0.4)
    assert clip_to_image((1.2, 0.2, 1.4, 0.4), (1.0, 1.0), stats, "p.txt:4", "mask", "the image") is None
    assert (stats.clipped, stats.dropped) == (1, 1)
    assert stats.notes == ["p.txt:3: clipped box 'mask' to the image", "p.txt:4: dropped box 'mask' lying outside the image"]
