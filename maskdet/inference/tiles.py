"""Sliced inference (`--tile`): find faces too small for the model at the whole frame's scale.

A 1920x1080 camera frame letterboxed to a 704-px model shrinks a 20-px face to 7 px, below what the
model can see. Cutting the frame into overlapping tiles about the model's own size keeps faces at
their native scale. The whole frame is still run once, for faces too large for one tile.

Two rules keep one face one box: a box that touches a tile's edge inside the frame is a face cut in
two and is dropped (with an overlap at least as wide as a face, the face lies whole in a neighbour
tile); what remains is merged greedily, best score first, dropping any box that mostly lies inside
a kept one (intersection over the smaller box), whatever its class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from maskdet.inference.detections import Detections, add_timings
from maskdet.settings import TILE_RANGE

EDGE_PX = 2.0  # a box within this many pixels of an inner tile edge was cut by it


@dataclass(frozen=True)
class TileSettings:
    size: int = 0  # tile side in frame pixels; 0 = off (the whole frame only)
    overlap: float = 0.25  # share of a tile shared with its neighbour
    merge_ios: float = 0.6  # a box this much inside a better one is the same face

    def __post_init__(self) -> None:
        low, high = TILE_RANGE
        if self.size and not low <= self.size <= high:
            raise ValueError(f"tile must be 0 (off) or {low}..{high} px, got {self.size}")
        if not 0.0 <= self.overlap < 0.9:
            raise ValueError(f"tile-overlap must be in [0, 0.9), got {self.overlap}")


def tile_starts(length: int, size: int, overlap: float) -> list[int]:
    """Evenly spread starts of tiles of `size` that cover 0..length with at least `overlap` shared."""
    if length <= size:
        return [0]
    step = size * (1.0 - overlap)
    count = math.ceil((length - size) / step) + 1
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


def tile_grid(width: int, height: int, size: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) of each tile, row by row."""
    return [(x, y, min(x + size, width), min(y + size, height))
            for y in tile_starts(height, size, overlap) for x in tile_starts(width, size, overlap)]


def merge_boxes(xyxy: np.ndarray, scores: np.ndarray, min_ios: float) -> np.ndarray:
    """Indices kept, best first: each box that lies mostly (IoS >= min_ios) inside a kept one is dropped."""
    order = np.argsort(-scores, kind="stable")
    areas = np.prod(np.clip(xyxy[:, 2:] - xyxy[:, :2], 0, None), axis=1)
    kept: list[int] = []
    for i in order:
        if kept:
            k = np.asarray(kept)
            lt = np.maximum(xyxy[k, :2], xyxy[i, :2])
            rb = np.minimum(xyxy[k, 2:], xyxy[i, 2:])
            inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
            smaller = np.minimum(areas[k], areas[i])
            if np.any(inter >= min_ios * np.maximum(smaller, 1e-6)):
                continue
        kept.append(int(i))
    return np.asarray(kept, int)


class TiledDetector:
    """Any Detector run on the whole frame and on overlapping tiles, its boxes merged into one set."""

    def __init__(self, detector, settings: TileSettings, max_det: int = 1000):
        self.detector = detector
        self.settings = settings
        self.max_det = max_det
        self.names = detector.names
        self.imgsz = detector.imgsz

    def __call__(self, image: np.ndarray) -> Detections:
        height, width = image.shape[:2]
        whole = self.detector(image)
        if max(height, width) <= self.settings.size:
            return whole
        parts, timings = [whole], dict(whole.timings_ms)
        for x1, y1, x2, y2 in tile_grid(width, height, self.settings.size, self.settings.overlap):
            found = self.detector(image[y1:y2, x1:x2])
            add_timings(timings, found.timings_ms)
            boxes = found.xyxy + np.array([x1, y1, x1, y1], np.float32)
            cut = np.zeros(len(boxes), bool)
            if x1 > 0:
                cut |= boxes[:, 0] <= x1 + EDGE_PX
            if y1 > 0:
                cut |= boxes[:, 1] <= y1 + EDGE_PX
            if x2 < width:
                cut |= boxes[:, 2] >= x2 - EDGE_PX
            if y2 < height:
                cut |= boxes[:, 3] >= y2 - EDGE_PX
            keep = ~cut
            parts.append(Detections(boxes[keep], found.confidence[keep], found.class_id[keep], found.names))
        xyxy = np.concatenate([p.xyxy for p in parts]).astype(np.float32).reshape(-1, 4)
        scores = np.concatenate([p.confidence for p in parts]).astype(np.float32)
        classes = np.concatenate([p.class_id for p in parts]).astype(int)
        keep = merge_boxes(xyxy, scores, self.settings.merge_ios)[: self.max_det]
        return Detections(xyxy[keep], scores[keep], classes[keep], self.names, timings)
