"""Counting what a person must do to turn pre-labels into the true labels (the benchmark's yardstick)."""

from __future__ import annotations

import pytest

from maskdet.data.corrections import Corrections, count_corrections, iou
from maskdet.data.labels import Box


def box(cls: int, x1: float, y1: float, x2: float, y2: float) -> Box:
    return Box.from_edges(cls, x1, y1, x2, y2)


FACE_A = box(0, 0.1, 0.1, 0.3, 0.3)
FACE_B = box(1, 0.5, 0.5, 0.7, 0.7)
FACE_C = box(2, 0.8, 0.1, 0.9, 0.2)


def test_iou_of_boxes():
    assert iou(FACE_A, FACE_A) == pytest.approx(1.0)
    assert iou(FACE_A, FACE_B) == 0.0
    assert iou(FACE_A, box(0, 0.1, 0.1, 0.2, 0.3)) == pytest.approx(0.5)


def test_each_kind_of_correction_is_counted():
    predicted = [
        (box(0, 0.11, 0.1, 0.3, 0.3), 0.9),  # on face A, right class: kept
        (box(0, 0.5, 0.5, 0.7, 0.69), 0.8),  # on face B, wrong class: fix the class
        (box(2, 0.83, 0.13, 0.95, 0.25), 0.7),  # near face C (IoU 0.1-0.5): move it
        (box(1, 0.4, 0.0, 0.45, 0.05), 0.6),  # nothing there: delete
    ]
    result = count_corrections(predicted, [FACE_A, FACE_B, FACE_C, box(0, 0.0, 0.8, 0.1, 0.9)], threshold=0.5)
    assert (result.kept, result.fixed_class, result.fixed_box, result.deleted, result.drawn) == (1, 1, 1, 1, 1)
    assert result.fixed == 2
    assert result.actions == 2 * 1 + 1 * 1 + 2 * 1 + 1 * 1  # draw + class + move + delete
    assert result.by_hand == 8 and result.saved == pytest.approx(1 - 6 / 8)


def test_boxes_under_the_threshold_are_not_there_to_correct():
    predicted = [(FACE_A, 0.9), (FACE_B, 0.2)]
    assert count_corrections(predicted, [FACE_A, FACE_B], 0.5).drawn == 1
    assert count_corrections(predicted, [FACE_A, FACE_B], 0.1).kept == 2


def test_a_good_match_is_not_taken_by_a_worse_box_first():
    # The weaker overlap (IoU ~0.3) comes first by confidence but must not use up face A.
    predicted = [(box(0, 0.15, 0.15, 0.35, 0.35), 0.9), (box(0, 0.1, 0.1, 0.3, 0.31), 0.5)]
    result = count_corrections(predicted, [FACE_A], 0.3)
    assert (result.kept, result.deleted, result.fixed_box) == (1, 1, 0)


def test_totals_add_up_over_photos():
    total = Corrections()
    total.add(count_corrections([(FACE_A, 0.9)], [FACE_A], 0.5))
    total.add(count_corrections([], [FACE_B], 0.5))
    assert (total.kept, total.drawn, total.true_boxes) == (1, 1, 2) and total.saved == pytest.approx(0.5)
    assert Corrections().saved == 0.0
