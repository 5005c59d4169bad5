"""What a real camera does to a photo, as functions: the robustness benchmark's corruptions.

Each corruption maps (image, YOLO boxes) to (image, YOLO boxes). Only rotation moves boxes: a rotated
face's box is the axis-aligned box around its rotated corners (slightly loose, as a labeller would
draw it on the rotated photo). Halving the resolution keeps normalised boxes as they are.
Severities follow the robustness issue: +-50 % exposure, JPEG quality 20, half resolution, +-15 deg.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Boxes = np.ndarray  # (N, 5): class, cx, cy, w, h, normalised as in YOLO label files
Corruption = Callable[[np.ndarray, Boxes], tuple[np.ndarray, Boxes]]


def _pixels_only(fn: Callable[[np.ndarray], np.ndarray]) -> Corruption:
    return lambda image, boxes: (fn(image), boxes)


def _scale_exposure(factor: float) -> Corruption:
    return _pixels_only(lambda im: np.clip(im.astype(np.float32) * factor, 0, 255).astype(np.uint8))


def _low_contrast(im: np.ndarray) -> np.ndarray:
    mean = im.mean(axis=(0, 1), keepdims=True)
    return np.clip(mean + 0.5 * (im.astype(np.float32) - mean), 0, 255).astype(np.uint8)


def _motion_blur(im: np.ndarray, length: int = 9) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length  # a horizontal pan, the common case for a fixed camera and walkers
    return cv2.filter2D(im, -1, kernel)


def _jpeg(im: np.ndarray, quality: int = 20) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def _half_resolution(im: np.ndarray) -> np.ndarray:
    h, w = im.shape[:2]
    return cv2.resize(im, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)


def _colour_cast(im: np.ndarray) -> np.ndarray:
    shift = np.array([-25, 0, 40], np.float32)  # BGR: warm sodium-lamp light
    return np.clip(im.astype(np.float32) + shift, 0, 255).astype(np.uint8)


def rotate(degrees: float) -> Corruption:
    """Rotate about the centre, same canvas size (corners filled grey), boxes follow their corners."""

    def apply(image: np.ndarray, boxes: Boxes) -> tuple[np.ndarray, Boxes]:
        h, w = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        out = cv2.warpAffine(image, matrix, (w, h), borderValue=(114, 114, 114))
        if len(boxes) == 0:
            return out, boxes
        cls, cx, cy, bw, bh = (boxes[:, i] for i in range(5))
        x1, y1, x2, y2 = (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h
        corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1), np.stack([x1, y2], 1)], 1)
        moved = corners @ matrix[:, :2].T + matrix[:, 2]
        nx1, ny1 = np.clip(moved[..., 0].min(1), 0, w), np.clip(moved[..., 1].min(1), 0, h)
        nx2, ny2 = np.clip(moved[..., 0].max(1), 0, w), np.clip(moved[..., 1].max(1), 0, h)
        keep = (nx2 - nx1 > 1) & (ny2 - ny1 > 1)  # a face rotated out of the frame is no longer there to find
        new = np.stack([cls, (nx1 + nx2) / 2 / w, (ny1 + ny2) / 2 / h, (nx2 - nx1) / w, (ny2 - ny1) / h], 1)
        return out, new[keep]

    return apply


CORRUPTIONS: dict[str, Corruption] = {
    "darker_50": _scale_exposure(0.5),
    "brighter_50": _scale_exposure(1.5),
    "low_contrast": _pixels_only(_low_contrast),
    "gaussian_blur": _pixels_only(lambda im: cv2.GaussianBlur(im, (0, 0), 2.0)),
    "motion_blur": _pixels_only(_motion_blur),
    "jpeg_q20": _pixels_only(_jpeg),
    "half_resolution": _pixels_only(_half_resolution),
    "rotate_+15": rotate(15),
    "rotate_-15": rotate(-15),
    "colour_cast": _pixels_only(_colour_cast),
}
