"""maskdet.data.labels: the YOLO label parser.

Contract: it never raises on any content; every problem is an Issue with the number of the line it
is on (file-level problems such as encoding have none); --fix repairs only what is safe (clip, drop)
and the repaired text has nothing left to repair.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from maskdet.data.labels import (
    EDGE_TOLERANCE,
    OVERHANG_LIMIT,
    Box,
    Issue,
    LabelFile,
    Severity,
    decode_label_bytes,
    format_label_text,
    parse_label_bytes,
    parse_label_text,
    read_label_file,
)

VALID = "0 0.5 0.5 0.2 0.2"


def codes(result: LabelFile, severity: Severity | None = None) -> list[tuple[int | None, str]]:
    return [(i.line, i.code) for i in result.issues if severity is None or i.severity is severity]


def approx_box(box: Box, cls: int, x: float, y: float, w: float, h: float) -> None:
    assert box.cls == cls
    assert (box.x, box.y, box.w, box.h) == pytest.approx((x, y, w, h), abs=1e-9)


# --- well-formed input ------------------------------------------------------------------------


def test_valid_lines_give_boxes_and_no_issues():
    result = parse_label_text("0 0.5 0.5 0.2 0.2\n2 0.25 0.75 0.1 0.3\n", num_classes=3)
    assert result.issues == []
    assert result.boxes == [Box(0, 0.5, 0.5, 0.2, 0.2), Box(2, 0.25, 0.75, 0.1, 0.3)]
    assert not result.needs_fix


def test_a_file_that_needs_no_fix_is_left_as_written():
    text = "1 0.500000 0.400000 0.300000 0.200000\n0 0.1 0.1 0.1 0.1\n"
    assert parse_label_text(text).fixed_text() == text


def test_empty_file_is_a_background_image_not_a_problem():
    result = parse_label_text("")
    assert result.boxes == [] and result.issues == [] and not result.needs_fix


def test_blank_lines_and_surrounding_whitespace_are_ignored_but_lines_keep_their_numbers():
    result = parse_label_text("\n  \n\t0 0.5 0.5 0.2 0.2  \n\n0 0.5 0.5 0.2\n")
    assert len(result.boxes) == 1
    assert codes(result) == [(5, "fields")]


def test_crlf_line_endings_and_tabs_are_accepted():
    result = parse_label_text("0\t0.5\t0.5\t0.2\t0.2\r\n1 0.3 0.3 0.1 0.1\r\n")
    assert result.issues == [] and len(result.boxes) == 2


def test_class_id_written_as_float_is_accepted():
    # Some exporters write "0.0"; it is still class 0.
    result = parse_label_text("1.0 0.5 0.5 0.2 0.2", num_classes=3)
    assert result.issues == [] and result.boxes[0].cls == 1


# --- malformed lines: errors, kept verbatim by --fix ----------------------------------------


@pytest.mark.parametrize("line, n", [("0 0.5 0.5 0.2", 4), ("0", 1), ("0 0.5 0.5 0.2 0.2 0.1 0.3", 7)])
def test_wrong_field_count_is_an_error_on_its_line(line, n):
    result = parse_label_text(f"{VALID}\n{line}\n")
    assert codes(result) == [(2, "fields")]
    issue = result.issues[0]
    assert issue.severity is Severity.ERROR and f"got {n}" in issue.message
    assert len(result.boxes) == 1


def test_six_fields_hint_at_a_confidence_column():
    result = parse_label_text("0 0.5 0.5 0.2 0.2 0.87")
    assert codes(result) == [(1, "fields")]
    assert "confidence" in result.issues[0].message


@pytest.mark.parametrize("line", ["0 0.5 abc 0.2 0.2", "zero 0.5 0.5 0.2 0.2", "0 0,5 0.5 0.2 0.2"])
def test_non_number_is_an_error(line):
    result = parse_label_text(line)
    assert codes(result, Severity.ERROR) == [(1, "number")]
    assert result.boxes == []


@pytest.mark.parametrize("line", ["0 nan 0.5 0.2 0.2", "0 0.5 0.5 inf 0.2", "0 0.5 -Infinity 0.2 0.2", "nan 0.5 0.5 0.2 0.2"])
def test_nan_or_infinite_is_an_error(line):
    result = parse_label_text(line)
    assert codes(result, Severity.ERROR) == [(1, "nan")]
    assert result.boxes == []


@pytest.mark.parametrize("cls", ["-1", "0.5", "1e-3"])
def test_class_id_must_be_a_non_negative_integer(cls):
    result = parse_label_text(f"{cls} 0.5 0.5 0.2 0.2")
    assert codes(result, Severity.ERROR) == [(1, "class")]


def test_class_id_out_of_range_names_the_valid_ids():
    result = parse_label_text(f"{VALID}\n3 0.5 0.5 0.2 0.2\n", num_classes=3)
    assert codes(result, Severity.ERROR) == [(2, "class")]
    assert "0..2" in result.issues[0].message
    assert [b.cls for b in result.boxes] == [0]


def test_class_range_is_only_checked_when_the_class_count_is_known():
    assert parse_label_text("7 0.5 0.5 0.2 0.2").issues == []


def test_fix_keeps_unparseable_lines_verbatim_for_a_person_to_look_at():
    text = "0 0.5 0.5 0.2\n1 0.5 0.5 0.2 0.2\n"
    result = parse_label_text(text)
    assert not result.needs_fix
    assert result.fixed_text() == text


def test_issue_reads_path_line_severity_message_code(tmp_path):
    result = parse_label_text("0 0.5 0.5", path=tmp_path / "a.txt")
    assert str(result.issues[0]).startswith(f"{tmp_path / 'a.txt'}:1: error: expected 5 fields")
    assert str(result.issues[0]).endswith("[fields]")
    assert str(Issue(Path("b.txt"), None, Severity.WARNING, "x", "msg")) == "b.txt: warning: msg [x]"


# --- safe repairs: clip, drop ----------------------------------------------------------------


def test_box_crossing_the_edge_is_fixable_and_clipped():
    # x from 0.9 to 1.1 -> clipped to 0.9..1.0; y from -0.05 to 0.15 -> 0.0..0.15
    result = parse_label_text("1 1.0 0.05 0.2 0.2\n")
    assert codes(result) == [(1, "bounds")]
    assert result.issues[0].severity is Severity.FIXABLE
    assert result.needs_fix
    approx_box(result.boxes[0], 1, 0.95, 0.075, 0.1, 0.15)
    fixed = parse_label_text(result.fixed_text())
    assert fixed.issues == []
    approx_box(fixed.boxes[0], 1, 0.95, 0.075, 0.1, 0.15)


def test_rounding_noise_at_the_edge_is_tolerated():
    # x2 = 1 + 5e-7: float noise from an exporter, not a box outside the image.
    result = parse_label_text("0 0.9000005 0.5 0.2 0.2")
    assert result.issues == []
    assert not result.needs_fix


def test_just_beyond_the_tolerance_is_clipped():
    result = parse_label_text("0 0.90001 0.5 0.2 0.2")
    assert codes(result) == [(1, "bounds")]


def test_box_entirely_outside_the_image_is_dropped():
    result = parse_label_text(f"0 1.5 0.5 0.2 0.2\n{VALID}\n")
    assert codes(result, Severity.FIXABLE) == [(1, "outside")]
    assert result.boxes == [Box(0, 0.5, 0.5, 0.2, 0.2)]
    assert result.fixed_text() == f"{VALID}\n"


@pytest.mark.parametrize("w, h", [("0", "0.2"), ("0.2", "0"), ("-0.1", "0.2"), ("0.2", "-0.0")])
def test_zero_or_negative_size_is_dropped(w, h):
    result = parse_label_text(f"0 0.5 0.5 {w} {h}\n{VALID}\n")
    assert codes(result) == [(1, "degenerate")]
    assert result.issues[0].severity is Severity.FIXABLE
    assert len(result.boxes) == 1
    assert result.fixed_text() == f"{VALID}\n"


def test_box_clipped_to_a_sliver_is_dropped_not_rewritten_with_zero_width():
    # x spans 0.99999995..2.0: after clipping 5e-8 wide, which the 6-decimal rewrite would turn
    # into "w = 0.000000", a zero-size box --fix would then have to drop on the next run.
    result = parse_label_text("0 1.5 0.5 1.0000001 0.2\n")
    assert [i.severity for i in result.issues] == [Severity.FIXABLE]
    refixed = parse_label_text(result.fixed_text())
    assert codes(refixed, Severity.FIXABLE) == []
    assert all(b.w > 0 and b.h > 0 for b in refixed.boxes)


def test_pixel_coordinates_are_an_error_that_fix_leaves_verbatim():
    # A whole file in pixels: clipping would make the first box a sliver (dropped) and the second a full-image
    # box, and the emptied file would then say "a photo without faces".
    text = "1 150 120 30 40\n0 0.5 0.5 2 2\n"
    result = parse_label_text(text, "photo.txt", num_classes=3)
    assert codes(result) == [(1, "pixels"), (2, "pixels")]
    assert all(i.severity is Severity.ERROR for i in result.issues)
    assert "x=150 y=120 w=30 h=40 looks like pixel coordinates, not YOLO's 0-1 fractions" in result.issues[0].message
    assert result.boxes == [] and not result.needs_fix
    assert result.fixed_text() == text


def test_a_centre_far_outside_the_image_is_an_error_not_a_box_to_drop():
    result = parse_label_text(f"0 -0.7 0.5 0.2 0.2\n{VALID}\n")
    assert codes(result, Severity.ERROR) == [(1, "far-outside")]
    assert result.boxes == [Box(0, 0.5, 0.5, 0.2, 0.2)] and not result.needs_fix


def test_a_pixel_line_is_kept_while_a_box_over_the_edge_beside_it_is_clipped():
    result = parse_label_text("1 150 120 30 40\n0 0.95 0.5 0.2 0.2\n")
    assert codes(result) == [(1, "pixels"), (2, "bounds")]
    assert result.fixed_text() == "1 150 120 30 40\n0 0.925000 0.500000 0.150000 0.200000\n"


def test_the_overhang_limit_separates_a_clip_from_an_error():
    at_limit = 1 + OVERHANG_LIMIT  # a side of 1.5 images, a centre at 1.5: still a box over the edge
    assert codes(parse_label_text(f"0 0.5 0.5 {at_limit} 0.5")) == [(1, "bounds")]
    assert codes(parse_label_text(f"0 {at_limit} 0.5 1.2 0.2")) == [(1, "bounds")]
    assert codes(parse_label_text(f"0 0.5 0.5 {at_limit + 0.01} 0.5")) == [(1, "pixels")]
    assert codes(parse_label_text(f"0 {-OVERHANG_LIMIT - 0.01} 0.5 0.2 0.2")) == [(1, "far-outside")]


def test_exact_duplicate_is_dropped_and_the_first_kept():
    result = parse_label_text(f"{VALID}\n1 0.3 0.3 0.1 0.1\n0 0.5000000 0.50 0.2 0.2000001\n")
    assert codes(result) == [(3, "duplicate")]
    assert [b.cls for b in result.boxes] == [0, 1]
    assert result.fixed_text() == f"{VALID}\n1 0.3 0.3 0.1 0.1\n"


def test_same_coordinates_with_another_class_is_not_a_duplicate():
    result = parse_label_text(f"{VALID}\n1 0.5 0.5 0.2 0.2\n")
    assert result.issues == [] and len(result.boxes) == 2


def test_box_that_becomes_a_duplicate_once_clipped_is_dropped():
    # The second box crosses the right edge; clipped, it is exactly the first one.
    result = parse_label_text("0 0.9 0.5 0.2 0.2\n0 1.0 0.5 0.4 0.2\n")
    assert codes(result) == [(2, "bounds"), (2, "duplicate")]
    assert len(result.boxes) == 1


def test_nearly_equal_boxes_are_both_kept():
    result = parse_label_text(f"{VALID}\n0 0.5 0.5 0.2 0.21\n")
    assert result.issues == [] and len(result.boxes) == 2


# --- bytes: encodings and binary junk --------------------------------------------------------


def test_utf8_bom_is_tolerated():
    result = parse_label_bytes(b"\xef\xbb\xbf" + f"{VALID}\n".encode())
    assert result.issues == []
    assert result.boxes == [Box(0, 0.5, 0.5, 0.2, 0.2)]


def test_non_utf8_is_an_error_without_a_line_but_the_rest_is_still_read():
    result = parse_label_bytes(b"0 0.5 0.5 0.2 0.2\n\xff\xfe 1 0.2\n")
    assert (None, "encoding") in codes(result, Severity.ERROR)
    assert (2, "fields") in codes(result, Severity.ERROR)
    assert result.boxes == [Box(0, 0.5, 0.5, 0.2, 0.2)]


def test_utf16_file_is_reported_not_crashed_on():
    result = parse_label_bytes(f"{VALID}\n".encode("utf-16"))
    assert any(i.severity is Severity.ERROR for i in result.issues)
    assert result.boxes == []


def test_nul_bytes_mean_a_binary_file():
    result = parse_label_bytes(b"\x00\x00\x89PNG\x00\x00")
    assert (None, "binary") in codes(result, Severity.ERROR)
    assert result.boxes == []


def test_decode_reports_the_offending_byte():
    text, issues = decode_label_bytes(b"ok\n\xc3", Path("x.txt"))
    assert text.startswith("ok\n")
    assert [i.code for i in issues] == ["encoding"] and "byte 3" in issues[0].message


# --- files --------------------------------------------------------------------------------------


def test_read_label_file_parses_from_disk(tmp_path):
    path = tmp_path / "img.txt"
    path.write_bytes(b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2\r\n4 0.5 0.5 0.2 0.2\r\n")
    result = read_label_file(path, num_classes=3)
    assert result.path == path
    assert result.boxes == [Box(0, 0.5, 0.5, 0.2, 0.2)]
    assert [(str(i.path), i.line, i.code) for i in result.issues] == [(str(path), 2, "class")]


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_unreadable_file_is_an_issue_not_an_exception(tmp_path, kind):
    path = tmp_path / "img.txt"
    if kind == "folder":
        path.mkdir()
    result = read_label_file(path)
    assert codes(result) == [(None, "unreadable")]
    assert result.boxes == []


def test_format_label_text_round_trips_through_the_parser():
    boxes = [Box(0, 0.5, 0.5, 0.2, 0.2), Box(2, 0.123457, 0.9, 0.05, 0.1)]
    result = parse_label_text(format_label_text(boxes))
    assert result.issues == [] and result.boxes == boxes


def test_box_edges_and_from_edges_are_inverse():
    box = Box.from_edges(1, 0.1, 0.2, 0.5, 0.9)
    approx_box(box, 1, 0.3, 0.55, 0.4, 0.7)
    assert box.edges == pytest.approx((0.1, 0.2, 0.5, 0.9))


# --- properties: no content can crash the parser ----------------------------------------------

PROPERTY = settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def assert_invariants(result: LabelFile, text: str, num_classes: int | None = None) -> None:
    """What holds for any input whatsoever."""
    line_count = len(text.splitlines())
    for issue in result.issues:
        assert isinstance(issue.severity, Severity)
        assert issue.line is None or 1 <= issue.line <= line_count, (issue, line_count)
    for box in result.boxes:
        # A trainer gets only finite boxes of positive size within the image. Edges may stray by the
        # documented rounding tolerance (EDGE_TOLERANCE), never more.
        assert all(math.isfinite(v) for v in (box.x, box.y, box.w, box.h)), box
        assert box.w > 0 and box.h > 0, box
        x1, y1, x2, y2 = box.edges
        assert -EDGE_TOLERANCE <= min(x1, y1) and max(x2, y2) <= 1 + EDGE_TOLERANCE, box
        assert box.cls >= 0 and (num_classes is None or box.cls < num_classes), box
    for line in result.lines:
        if line.action == "clip":  # clipped boxes lie inside [0, 1] up to float noise
            x1, y1, x2, y2 = line.box.clipped().edges
            assert -1e-12 <= min(x1, y1) and max(x2, y2) <= 1 + 1e-12

    # --fix: the repaired text has nothing left to repair, keeps every error in sight, gives the
    # trainer the same boxes, and a second repair changes nothing.
    fixed_text = result.fixed_text()
    fixed = parse_label_text(fixed_text, result.path, num_classes)
    assert [i for i in fixed.issues if i.severity is Severity.FIXABLE] == []
    assert not fixed.needs_fix
    line_errors = sorted(i.code for i in result.issues if i.severity is Severity.ERROR and i.line is not None)
    assert sorted(i.code for i in fixed.issues if i.severity is Severity.ERROR) == line_errors
    assert len(fixed.boxes) == len(result.boxes)
    for a, b in zip(result.boxes, fixed.boxes, strict=True):
        assert a.cls == b.cls
        assert (a.x, a.y, a.w, a.h) == pytest.approx((b.x, b.y, b.w, b.h), abs=1e-6)
    assert fixed.fixed_text() == fixed_text


@PROPERTY
@given(st.text(), st.sampled_from([None, 1, 3]))
@example("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n", 3)
@example("\ufeff0 0.5 0.5 0.2 0.2", None)
@example("0 1.5 0.5 1.0000001 0.2\n", None)
def test_property_any_text_never_raises(text, num_classes):
    result = parse_label_text(text, num_classes=num_classes)
    assert_invariants(result, text, num_classes)


@PROPERTY
@given(st.binary(max_size=400))
@example(b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2\n")
@example(b"\x00\xff\n0 0.5 0.5 0.2 0.2")
def test_property_any_bytes_never_raise(data):
    result = parse_label_bytes(data, num_classes=3)
    text, _ = decode_label_bytes(data, result.path)
    assert_invariants(result, text, 3)


# Values that sit on, just inside and just outside the edges, or break arithmetic.
EDGY = [0.0, 1.0, 0.5, -0.0, 1e-7, 3e-7, 1 - 1e-7, 1 - 3e-7, 1 + 1e-7, 1 + 1e-5, -1e-7, -1e-5, 2.0, -1.0,
        1e-300, 5e-324, 1e300, -1e300, 1.7976931348623157e308]
NUMBERS = st.one_of(
    st.floats(min_value=-0.5, max_value=1.5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(EDGY),
)


@st.composite
def number_token(draw) -> str:
    value = draw(NUMBERS)
    style = draw(st.sampled_from(["repr", "6f", "g", "e"]))
    return {"repr": repr(value), "6f": f"{value:.6f}", "g": f"{value:g}", "e": f"{value:e}"}[style]


# Edges this far outside [0, 1] keep a box's centre and sides within OVERHANG_LIMIT: a box that --fix repairs.
EDGE_REACH = OVERHANG_LIMIT / 2


@st.composite
def edge_box_tokens(draw) -> list[str]:
    """A box given by its edges, so slivers and boxes just over the edge come up often."""
    cls = draw(st.integers(0, 3))
    x1, x2, y1, y2 = (draw(st.one_of(st.sampled_from(EDGY[:12]), st.floats(-EDGE_REACH, 1 + EDGE_REACH))) for _ in range(4))
    return [str(cls), repr((x1 + x2) / 2), repr((y1 + y2) / 2), repr(x2 - x1), repr(y2 - y1)]


@st.composite
def near_valid_line(draw) -> str:
    kind = draw(st.sampled_from(["box", "box", "edges", "fields", "junk"]))
    if kind == "edges":
        tokens = draw(edge_box_tokens())
    else:
        cls = draw(st.one_of(st.integers(-2, 5).map(str), number_token(), st.sampled_from(["1.0", "1.5", "-0", "x", "1e400"])))
        tokens = [cls, *(draw(number_token()) for _ in range(4))]
        if kind == "fields":  # too few or too many
            n = draw(st.integers(0, 8).filter(lambda n: n != 5))
            tokens = (tokens + [draw(number_token()) for _ in range(4)])[:n]
        elif kind == "junk":
            i = draw(st.integers(0, 4))
            tokens[i] = draw(st.text(alphabet="0123456789.eE+-naifINF_ ,x\t", min_size=1, max_size=8))
    sep = draw(st.sampled_from([" ", "  ", "\t", " \t "]))
    return sep.join(tokens)


@st.composite
def near_valid_file(draw) -> str:
    lines = draw(st.lists(st.one_of(near_valid_line(), st.sampled_from(["", "   ", VALID])), max_size=12))
    if lines and draw(st.booleans()):  # repeat some lines: duplicates
        lines += draw(st.lists(st.sampled_from(lines), max_size=4))
    if lines:
        lines = draw(st.permutations(lines))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


@PROPERTY
@given(near_valid_file(), st.sampled_from([None, 3]))
def test_property_near_valid_files_never_raise_and_fix_is_idempotent(text, num_classes):
    result = parse_label_text(text, num_classes=num_classes)
    assert_invariants(result, text, num_classes)


@PROPERTY
@given(st.lists(edge_box_tokens(), min_size=1, max_size=6))
def test_property_boxes_at_the_edges_repair_cleanly(rows):
    text = "".join(" ".join(r) + "\n" for r in rows)
    result = parse_label_text(text, num_classes=4)
    assert_invariants(result, text, 4)
    assert all(i.severity is Severity.FIXABLE for i in result.issues)  # finite, well-formed: never an error


@PROPERTY
@given(st.integers(0, 2), st.floats(0, 4000), st.floats(0, 4000), st.floats(2, 4000), st.floats(2, 4000))
def test_property_pixel_boxes_are_errors_never_repairs(cls, x, y, w, h):
    text = f"{cls} {x:g} {y:g} {w:g} {h:g}\n"
    result = parse_label_text(text, num_classes=3)
    assert codes(result, Severity.ERROR) == [(1, "pixels")], result.issues
    assert result.boxes == [] and result.fixed_text() == text


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 2), st.floats(0.05, 0.95), st.floats(0.05, 0.95), st.floats(0.01, 0.1), st.floats(0.01, 0.1)),
                max_size=8))
def test_property_valid_boxes_are_kept_as_written(rows):
    text = format_label_text([Box(*r) for r in rows])
    result = parse_label_text(text, num_classes=3)
    # Boxes well inside the image: the only possible finding is a repeat (after 6-decimal rounding).
    assert {i.code for i in result.issues} <= {"duplicate"}
    if not result.issues:
        assert not result.needs_fix and result.fixed_text() == text
        assert len(result.boxes) == len(rows)
