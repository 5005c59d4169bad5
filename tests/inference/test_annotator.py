"""The annotator: labels stay readable on any image size and never hide one another."""

from __future__ import annotations

import numpy as np

from maskdet.inference.detections import Detections
from maskdet.inference.visualize import NAMED_COLORS, Annotator

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")


def detections(*boxes: tuple[float, float, float, float, int, float]) -> Detections:
    array = np.array(boxes, np.float32).reshape(-1, 6)
    return Detections(array[:, :4], array[:, 5], array[:, 4].astype(int), NAMES)


def pixels_of(image: np.ndarray, bgr: tuple[int, int, int]) -> int:
    return int(np.all(image == np.array(bgr, np.uint8), axis=2).sum())


def test_two_boxes_on_one_face_show_both_labels():
    # The same face found twice with two classes: one tag used to cover the other completely.
    image = np.zeros((480, 640, 3), np.uint8)
    det = detections((300, 200, 360, 270, 0, 0.61), (302, 201, 361, 271, 1, 0.58))
    out = Annotator(NAMES, line_thickness=2)(image, det)
    alone = {cls: Annotator(NAMES, line_thickness=2)(np.zeros_like(image), detections(det_row))
             for cls, det_row in ((0, (300, 200, 360, 270, 0, 0.61)), (1, (302, 201, 361, 271, 1, 0.58)))}
    for cls, name in enumerate(NAMES[:2]):
        colour = NAMED_COLORS[name]
        # each class's colour shows about as much as when its box is drawn alone (a covered tag showed 18 %)
        assert pixels_of(out, colour) >= 0.75 * pixels_of(alone[cls], colour), name


def text_share_of_tag(size: tuple[int, int]) -> float:
    """How much of a label tag its white text covers, for one box on a black image of `size` (h, w)."""
    h, w = size
    box = (w * 0.4, h * 0.4, w * 0.5, h * 0.55, 1, 0.9)
    out = Annotator(NAMES)(np.zeros((h, w, 3), np.uint8), detections(box))
    above_box = slice(0, int(box[1]) - 2 * max(1, round(sum(size) / 2 * 0.003)))  # the tag sits above the box
    tag = np.all(out[above_box] == np.array(NAMED_COLORS["without_mask"], np.uint8), axis=2)
    text = np.all(out[above_box] > 200, axis=2)  # white strokes (anti-aliased at their edges)
    ys, xs = np.nonzero(tag)
    region = text[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return region.sum() / region.size


def test_label_text_stroke_grows_with_the_image():
    # On a 4000 px photo the tag's text must be as bold, relative to the tag, as on a 640 px one: a 1 px
    # stroke at a large font scale is a hairline nobody can read.
    small, large = text_share_of_tag((480, 640)), text_share_of_tag((3000, 4000))
    assert small > 0.05 and large >= 0.8 * small, (small, large)
