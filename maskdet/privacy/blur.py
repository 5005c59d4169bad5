"""Blurring faces: the box the model found, enlarged so hair and jaw go too, smoothed beyond recognition.

The region is shrunk to a few cells across and scaled back up with bilinear interpolation, then
smoothed once more: a cost that does not grow with the face's size (a 400 px face costs what a
40 px one does), and no block edges for a viewer -- or a model -- to read features from.
"""

from __future__ import annotations

import cv2
import numpy as np

from maskdet.settings import PrivacySettings, default_of

MARGIN = default_of(PrivacySettings, "blur_margin")  # of the box's size on each side (its one home: maskdet.settings)
CELLS = 4  # what is left of a face across its longer side (6 left the model a face at conf 0.11 on 1 in 12)


def grown(xyxy: np.ndarray, margin: float) -> np.ndarray:
    """(N, 4) float boxes grown by `margin` of their size on each side."""
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
    size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    return boxes + np.array([-1, -1, 1, 1], np.float32) * size * margin


def enlarged(xyxy: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """(N, 4) int boxes grown by `margin` of their size on each side, clipped to the image."""
    grown_boxes = np.round(grown(xyxy, margin)).astype(np.int64)
    grown_boxes[:, [0, 2]] = grown_boxes[:, [0, 2]].clip(0, width)
    grown_boxes[:, [1, 3]] = grown_boxes[:, [1, 3]].clip(0, height)
    return grown_boxes


def blur_region(region: np.ndarray, cell_px: float) -> np.ndarray:
    """Cells of `cell_px` (from the whole face's size: a face cut by the image edge is not blurred less)."""
    h, w = region.shape[:2]
    small_w, small_h = max(1, round(w / cell_px)), max(1, round(h / cell_px))
    if small_w == 1 and small_h == 1:
        return np.broadcast_to(region.reshape(-1, region.shape[2]).mean(0).astype(region.dtype), region.shape)
    small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
    smooth = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, int(cell_px) | 1)  # one cell wide: rounds off the corners bilinear leaves
    return cv2.blur(smooth, (k, k))


def blur_faces(image: np.ndarray, xyxy: np.ndarray, margin: float = MARGIN, cells: int = CELLS) -> np.ndarray:
    """Blur every box of `xyxy` (enlarged by `margin`) in `image`, in place; returns the image."""
    h, w = image.shape[:2]
    whole = grown(xyxy, margin)
    for (x1, y1, x2, y2), (gx1, gy1, gx2, gy2) in zip(enlarged(xyxy, margin, w, h), whole):
        if x2 > x1 and y2 > y1:
            image[y1:y2, x1:x2] = blur_region(image[y1:y2, x1:x2], max(1.0, max(gx2 - gx1, gy2 - gy1) / cells))
    return image
