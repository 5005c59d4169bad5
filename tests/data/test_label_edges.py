"""Label parsing at its edges: the exact words and places of file-level issues, NUL bytes between fields,
the duplicate tolerance to the last bit (found by mutation testing, bench/mutation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskdet.data.labels import Severity, parse_label_bytes, parse_label_text, read_label_file
from maskdet.data.voc import ConversionStats, VocAnnotation, VocObject, parse_voc, voc_to_boxes
from maskdet.errors import UserError


def test_a_file_that_is_not_utf8_is_one_error_naming_the_file_and_the_byte_and_the_rest_is_read(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"0 0.5 0.5 0.2 0.2\n\xff\n1 0.25 0.25 0.1 0.1\n")
    result = read_label_file(path)
    first = result.issues[0]
    assert str(first) == f"{path}: error: not UTF-8 text (byte 18) [encoding]"
    assert first.path == path and first.line is None and first.severity is Severity.ERROR
    assert [b.cls for b in result.boxes] == [0, 1]  # the bad line is a bad line, the others are boxes
    assert [(i.line, i.code) for i in result.issues[1:]] == [(2, "fields")]
    assert result.lines[1].text == "\ufffd"  # read leniently: the byte replaced, never dropped silently


def test_nul_bytes_are_one_error_naming_the_file_and_read_as_spaces():
    result = parse_label_bytes(b"0\x000.5 0.5 0.2 0.2\n1 0.25 0.25 0.1 0.1\x00\n", "b.txt")
    (issue,) = result.issues
    assert str(issue) == "b.txt: error: contains NUL bytes: not a text label file [binary]"
    assert issue.path == Path("b.txt") and issue.line is None
    assert [(b.cls, b.x) for b in result.boxes] == [(0, 0.5), (1, 0.25)]


def test_bytes_without_a_path_are_reported_as_labels():
    result = parse_label_bytes(b"\xff0 0.5 0.5 0.2 0.2\x00")
    assert {str(i).split(":")[0] for i in result.issues} == {"<labels>"}
    assert all(i.path == Path("<labels>") for i in result.issues)


def test_an_unreadable_label_file_is_an_error_naming_it_and_why(tmp_path):
    folder = tmp_path / "c.txt"
    folder.mkdir()
    result = read_label_file(folder)
    assert result.path == folder and result.lines == []
    (issue,) = result.issues
    assert str(issue) == f"{folder}: error: cannot read: Is a directory [unreadable]"
    assert issue.path == folder and issue.severity is Severity.ERROR


def test_boxes_exactly_the_duplicate_tolerance_apart_are_the_same_box():
    # 0.000002 - 0.000001 is exactly 1e-6 in floating point: at the tolerance, still the same box.
    result = parse_label_text("0 0.5 0.5 0.000001 0.2\n0 0.5 0.5 0.000002 0.2\n")
    assert [(i.line, i.code) for i in result.issues] == [(2, "duplicate")]
    # Twice the tolerance apart (0.000003 - 0.000001 is a hair over 2e-6): two boxes.
    assert parse_label_text("0 0.5 0.5 0.000001 0.2\n0 0.5 0.5 0.000003 0.2\n").issues == []


# --- Pascal VOC ------------------------------------------------------------------------------------


VOC = """<annotation><filename>a.png</filename><size><width>100</width><height>50</height></size>
<object><name><!-- labelImg kept a note here -->with_mask</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>
</annotation>"""


def test_comments_inside_voc_elements_are_ignored(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(VOC)
    ann = parse_voc(path)
    assert [(o.name, o.xmin, o.ymax) for o in ann.objects] == [("with_mask", 1.0, 40.0)] and ann.skipped == ()


def test_an_unreadable_voc_file_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "a.xml"
    folder.mkdir()
    try:
        parse_voc(folder)
    except UserError as exc:
        assert exc.path == folder and str(exc).startswith(f"{folder}: cannot read: ")
    else:
        raise AssertionError("no error")


def test_unknown_classes_are_summarised_with_the_files_that_use_them():
    stats = ConversionStats()
    for name, file in [("mask", "a.xml"), ("mask", "a.xml"), ("mask", "b.xml"), ("hat", "c.xml"), ("mask", "d.xml"),
                       ("mask", "e.xml"), ("mask", "f.xml")]:
        stats.add_unknown(name, file)
    assert stats.unknown == {"mask": 6, "hat": 1}
    assert stats.unknown_files == {"mask": ["a.xml", "b.xml", "d.xml", "e.xml", "f.xml"], "hat": ["c.xml"]}
    assert stats.unknown_summary() == "'mask' x6 in a.xml, b.xml, d.xml and 2 more files; 'hat' x1 in c.xml"
    four = ConversionStats()
    for file in ("a", "b", "c", "d"):
        four.add_unknown("mask", file)
    assert four.unknown_summary() == "'mask' x4 in a, b, c and 1 more file"
    assert ConversionStats().unknown_summary() == ""
    bare = ConversionStats()
    bare.unknown["mask"] = 2  # counted without a file
    assert bare.unknown_summary() == "'mask' x2"


def test_stats_of_two_batches_add_up_field_by_field():
    a, b = ConversionStats(boxes_in=5, boxes_out=3, clipped=2, dropped=1), ConversionStats(boxes_in=4, boxes_out=2, clipped=3, dropped=2)
    a.add_unknown("mask", "a.xml")
    b.add_unknown("mask", "a.xml")
    b.add_unknown("mask", "b.xml")
    b.add_unknown("hat", "c.xml")
    b.notes.append("c.xml:3: clipped")
    a.add(b)
    assert (a.boxes_in, a.boxes_out, a.clipped, a.dropped) == (9, 5, 5, 3)
    assert a.unknown == {"mask": 3, "hat": 1} and a.notes == ["c.xml:3: clipped"]
    assert a.unknown_files == {"mask": ["a.xml", "b.xml"], "hat": ["c.xml"]}


def test_voc_conversion_counts_every_dropped_box_and_goes_on_after_one():
    ids = {"with_mask": 0, "without_mask": 1}
    objects = [("with_mask", 5, 5, 1, 1), ("with_mask", 9, 9, 2, 2),  # inverted, twice
               ("with_mask", 10, 60, 20, 70), ("without_mask", 120, 5, 130, 9),  # below and right of the 100x50 image
               ("face", 1, 1, 5, 5),  # unknown
               ("with_mask", -10, -3, 0.5, 0.5),  # clipped to a sliver in the top-left corner
               ("without_mask", 10, 10, 30, 40)]
    ann = VocAnnotation(Path("a.xml"), "a.png", 100, 50,
                        tuple(VocObject(name, *coords, line=10 + i) for i, (name, *coords) in enumerate(objects)))
    boxes, stats = voc_to_boxes(ann, (100, 50), ids)
    assert stats.dropped == 4 and stats.clipped == 1 and stats.unknown_files == {"face": ["a.xml"]}
    assert [b.cls for b in boxes] == [0, 1]
    sliver = boxes[0]
    assert sliver.edges == pytest.approx((0.0, 0.0, 0.005, 0.01))


def test_exactly_three_files_are_all_named_with_nothing_more():
    stats = ConversionStats()
    for file in ("a.xml", "b.xml", "c.xml"):
        stats.add_unknown("mask", file)
    assert stats.unknown_summary() == "'mask' x3 in a.xml, b.xml, c.xml"


def test_every_line_issue_reads_file_line_severity_message_and_code():
    text = "\n".join([
        "0 0.5 0.5 0.2",
        "0 0.5 0.5 0.2 0.2 0.9",
        "0 0.5 " + "x" * 45 + " 0.2 0.2",
        "0 nan 0.5 0.2 0.2",
        "1.5 0.5 0.5 0.2 0.2",
        "-1.000000000000000000001 0.5 0.5 0.2 0.2",
        "0 0.5 0.5 0 0.2",
        "0 1.5 1.5 0.2 0.2",
        "0 0.95 0.5 0.2 0.2",
        "",
        "2 0.5 0.5 0.2 0.2",
        "2 0.5 0.5 0.2 0.2",
        "1 0.3 0.3 0.1 0.1",
        "0 0.5 1.0000009 0.2 0.000002",  # clipped to a height that rounds to 0: dropped, not rewritten
    ])
    result = parse_label_text(text, "l.txt", num_classes=3)
    assert [str(i) for i in result.issues] == [
        "l.txt:1: error: expected 5 fields 'class x y w h', got 4 [fields]",
        "l.txt:2: error: expected 5 fields 'class x y w h', got 6 (a 6th field looks like a confidence: "
        "use --save-txt without --save-conf) [fields]",
        f"l.txt:3: error: not a number: {'x' * 40!r} [number]",
        "l.txt:4: error: NaN or infinite value [nan]",
        "l.txt:5: error: class id must be a non-negative integer, got 1.5 [class]",
        "l.txt:6: error: class id must be a non-negative integer, got -1.00000000000000000 [class]",  # the first 20 characters
        "l.txt:7: fixable: zero or negative size (w=0, h=0.2) [degenerate]",
        "l.txt:8: fixable: box lies (all but a sliver) outside the image [outside]",
        "l.txt:9: fixable: box extends outside the image (coordinates outside [0, 1]) [bounds]",
        "l.txt:12: fixable: duplicate of an earlier box [duplicate]",
        "l.txt:14: fixable: box lies (all but a sliver) outside the image [outside]",
    ]
    assert all(i.path == Path("l.txt") for i in result.issues)
    assert [line.number for line in result.lines] == [*range(1, 10), *range(11, 15)]
    assert [(b.cls, round(b.x, 3)) for b in result.boxes] == [(0, 0.925), (2, 0.5), (1, 0.3)]  # after the duplicate, go on
    assert [str(i).split(":")[0] for i in parse_label_text("0 0.5").issues] == ["<labels>"]


def test_a_dropped_box_is_never_the_original_of_a_duplicate():
    result = parse_label_text("0 0.5 0.5 0 0.2\n0 0.5 0.5 0 0.2\n")
    assert [(i.line, i.code) for i in result.issues] == [(1, "degenerate"), (2, "degenerate")]
