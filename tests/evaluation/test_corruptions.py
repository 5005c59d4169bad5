"""The robustness benchmark's camera corruptions: pixels change, boxes follow only when the geometry does."""

import numpy as np
import pytest

from maskdet.evaluation.corruptions import CORRUPTIONS, rotate

BOXES = np.array([[1, 0.5, 0.5, 0.2, 0.4], [0, 0.25, 0.25, 0.1, 0.1]], np.float32)


@pytest.fixture
def photo():
    rng = np.random.default_rng(1)
    return rng.integers(30, 220, (120, 160, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_every_corruption_changes_the_photo(name, photo):
    out, boxes = CORRUPTIONS[name](photo, BOXES)
    assert out.dtype == np.uint8 and out.ndim == 3
    if out.shape == photo.shape:
        assert np.abs(out.astype(int) - photo).mean() > 2
    assert len(boxes) == len(BOXES)


@pytest.mark.parametrize("name", ["darker_50", "brighter_50", "jpeg_q20", "gaussian_blur", "half_resolution"])
def test_pixel_corruptions_keep_the_boxes(name, photo):
    _, boxes = CORRUPTIONS[name](photo, BOXES)
    np.testing.assert_array_equal(boxes, BOXES)


def test_half_resolution_halves_both_sides(photo):
    out, _ = CORRUPTIONS["half_resolution"](photo, BOXES)
    assert out.shape[:2] == (60, 80)


def test_a_centred_box_rotated_90_degrees_swaps_its_sides():
    square = np.zeros((100, 100, 3), np.uint8)
    _, boxes = rotate(90)(square, np.array([[2, 0.5, 0.5, 0.2, 0.6]], np.float32))
    np.testing.assert_allclose(boxes[0], [2, 0.5, 0.5, 0.6, 0.2], atol=1e-5)


def test_rotation_by_15_degrees_encloses_the_rotated_corners():
    square = np.zeros((100, 100, 3), np.uint8)
    _, boxes = rotate(15)(square, np.array([[0, 0.5, 0.5, 0.2, 0.2]], np.float32))
    side = 0.2 * (np.cos(np.radians(15)) + np.sin(np.radians(15)))
    np.testing.assert_allclose(boxes[0], [0, 0.5, 0.5, side, side], atol=1e-5)
