"""maskdet.yolo_format: the one writer of YOLO label lines (dataset tools, --save-txt, pre-labels)."""

from __future__ import annotations

from maskdet.data.labels import Box as DataBox
from maskdet.data.labels import parse_label_text
from maskdet.yolo_format import Box, format_label_text, label_line, parse_label_line


def test_a_plain_line_is_a_training_label_that_parses_back():
    box = Box.from_edges(1, 0.1, 0.2, 0.3, 0.6)
    assert label_line(box) == "1 0.200000 0.400000 0.200000 0.400000"
    parsed, issues = parse_label_line(label_line(box), 1, "a.txt", 3)
    assert issues == [] and parsed == Box(1, 0.2, 0.4, 0.2, 0.4)


def test_save_conf_and_track_lines_put_the_confidence_then_the_id_last():
    box = Box(0, 0.5, 0.5, 0.2, 0.2)
    assert label_line(box, 0.87654) == "0 0.500000 0.500000 0.200000 0.200000 0.8765"
    assert label_line(box, None, 7) == "0 0.500000 0.500000 0.200000 0.200000 7"
    assert label_line(box, 0.5, 7).split()[-2:] == ["0.5000", "7"]
    _, issues = parse_label_line(label_line(box, 0.5), 1, "a.txt", 3)
    assert "confidence" in issues[0].message  # not a training label: the checker says why


def test_the_dataset_tools_use_the_same_box_and_writer():
    assert DataBox is Box
    boxes = [Box(0, 0.5, 0.5, 0.2, 0.2), Box(2, 0.25, 0.75, 0.1, 0.3)]
    assert parse_label_text(format_label_text(boxes)).boxes == boxes
