"""Drawing labelled boxes, shared by dataset previews and detection output."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# Colours people read at a glance (BGR): a mask is green, no mask red, a mask worn wrong amber.
NAMED_COLORS = {"with_mask": (80, 175, 76), "without_mask": (54, 67, 244), "mask_weared_incorrect": (0, 170, 255)}
FALLBACK_COLORS = [(255, 128, 0), (255, 0, 255), (0, 255, 255), (128, 0, 255), (255, 255, 0), (0, 128, 255)]


def class_color(class_id: int, names: Sequence[str]) -> tuple[int, int, int]:
    name = names[class_id] if 0 <= class_id < len(names) else ""
    return NAMED_COLORS.get(name, FALLBACK_COLORS[class_id % len(FALLBACK_COLORS)])


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2


def text_style(thickness: int) -> tuple[float, int]:
    """Font scale and stroke for a box line of `thickness` px: both grow with it, so a label stays readable
    on a 4000 px photo (a 1 px stroke at a large scale is a hairline nobody can read)."""
    return max(0.35, thickness / 4), max(1, thickness // 2)


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_label(xyxy: Sequence[float], size: tuple[int, int], image_shape: tuple[int, ...], taken: list[Rect]) -> Rect:
    """Where a label tag of `size` (w, h) goes: above the box (inside it at the top edge), moved down a tag
    at a time while it would cover a tag already placed (two boxes on one face), within the image."""
    w, h = size
    height, width = image_shape[:2]
    x1, y1 = int(round(xyxy[0])), int(round(xyxy[1]))
    x = min(max(x1, 0), max(width - w, 0))
    top = y1 - h if y1 - h >= 0 else max(y1, 0)
    rect = (x, top, x + w, top + h)
    while any(_overlaps(rect, other) for other in taken) and rect[3] + h <= height:
        below = max(other[3] for other in taken if _overlaps(rect, other))
        rect = (x, below, x + w, below + h)
    taken.append(rect)
    return rect


def draw_box(image: np.ndarray, xyxy: Sequence[float], color: tuple[int, int, int], label: str | None, thickness: int = 2,
             taken: list[Rect] | None = None) -> None:
    """Draw one box with an optional filled label tag above it; `taken` (tags already drawn) keeps tags apart."""
    x1, y1, x2, y2 = (int(round(v)) for v in xyxy)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
    if label:
        draw_label(image, xyxy, color, label, thickness, [] if taken is None else taken)


def draw_label(image: np.ndarray, xyxy: Sequence[float], color: tuple[int, int, int], label: str, thickness: int,
               taken: list[Rect]) -> None:
    scale, stroke = text_style(thickness)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, stroke)
    pad = max(1, stroke)
    x, top, right, bottom = place_label(xyxy, (tw + 2 * pad, th + base + 2 * pad), image.shape, taken)
    cv2.rectangle(image, (x, top), (right, bottom), color, -1)
    cv2.putText(image, label, (x + pad, top + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), stroke, cv2.LINE_AA)


def tile(images: list[np.ndarray], cell: int = 320, columns: int = 3) -> np.ndarray:
    """Letterbox images into cells of a grid, like Ultralytics' train_batch*.jpg mosaics."""
    rows = max(1, -(-len(images) // columns))
    canvas = np.full((rows * cell, columns * cell, 3), 114, np.uint8)
    for i, im in enumerate(images):
        h, w = im.shape[:2]
        s = cell / max(h, w)
        resized = cv2.resize(im, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, columns)
        y, x = r * cell + (cell - resized.shape[0]) // 2, c * cell + (cell - resized.shape[1]) // 2
        canvas[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return canvas


class Annotator:
    """Draws Detections onto a frame: boxes coloured by class, 'name 0.87' labels."""

    def __init__(self, names: Sequence[str], line_thickness: int | None = None, hide_labels: bool = False, hide_conf: bool = False):
        self.names = tuple(names)
        self.line_thickness = line_thickness
        self.hide_labels = hide_labels
        self.hide_conf = hide_conf

    def label(self, name: str, confidence: float) -> str | None:
        if self.hide_labels:
            return None
        return name if self.hide_conf else f"{name} {confidence:.2f}"

    def __call__(self, image: np.ndarray, detections) -> np.ndarray:
        """Draw in place and return the image (callers copy first if they need the original)."""
        thickness = self.line_thickness or max(1, round(sum(image.shape[:2]) / 2 * 0.003))
        order = np.argsort(-detections.confidence, kind="stable")  # the surest first: its label gets the spot above its box
        for i in order[::-1]:  # boxes first, least sure underneath
            draw_box(image, detections.xyxy[i], class_color(int(detections.class_id[i]), self.names), None, thickness)
        taken: list[Rect] = []
        for i in order:  # then the tags, each clear of the ones before it
            label = self.label(detections.class_name(i), float(detections.confidence[i]))
            if label and getattr(detections, "tracker_id", None) is not None:
                label = detections.track_label(i) + label  # '#7 without_mask 0.91'
            if label:
                draw_label(image, detections.xyxy[i], class_color(int(detections.class_id[i]), self.names), label,
                           thickness, taken)
        return image


def draw_overlay(image: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]]) -> None:
    """A translucent panel in the top-left corner with one coloured line of text each (FPS, counts)."""
    if not lines:
        return
    scale, pad, step = 0.55, 6, 20
    width = max(cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for text, _ in lines) + 2 * pad
    height = step * len(lines) + pad
    roi = image[:height, :width]
    roi[:] = (roi * 0.4).astype(np.uint8)
    for k, (text, color) in enumerate(lines):
        cv2.putText(image, text, (pad, pad + 12 + k * step), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
