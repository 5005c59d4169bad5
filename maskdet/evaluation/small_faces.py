"""A camera-sized scene of small labelled faces, for measuring what sliced inference (`--tile`) finds.

A station camera sees faces 15-30 px high in a 1920x1080 frame; fitted whole to the model's 704 px they
shrink below what it can see. The scene takes real labelled faces (a split of a YOLO dataset, never train),
each with the context around it, shrinks every one to the same height and lays them out on a jittered grid,
so that some fall on the seams between tiles. Faces must be larger than the target in their photo: they are
only ever shrunk, never blown up.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskdet.config import load_dataset_config
from maskdet.data.labels import read_label_file
from maskdet.fileio import list_images
from maskdet.imageio import read_image_bounded
from maskdet.inference.detections import box_iou

CONTEXT = 0.4  # of the face's size, kept on each side: hair, shoulders, the mask's straps
GRID = (8, 5)  # faces across and down in one scene: 40 a frame


@dataclass
class Scene:
    image: np.ndarray  # BGR
    boxes: np.ndarray  # (n, 4) x1 y1 x2 y2 of each face, frame pixels
    classes: np.ndarray  # (n,) class id of each face


def labelled_faces(data: str, split: str, min_px: int) -> list[tuple[np.ndarray, tuple[float, float, float, float], int]]:
    """Each face of the split at least min_px high with its context: (crop, face box inside the crop, class)."""
    config = load_dataset_config(data)
    faces = []
    for path in list_images(config.images_dir(split)):
        label = config.labels_dir(split) / f"{path.stem}.txt"
        if not label.is_file():
            continue
        image = read_image_bounded(path)
        h, w = image.shape[:2]
        for box in read_label_file(label, len(config.names)).boxes:
            x1, y1, x2, y2 = np.array(box.edges) * (w, h, w, h)
            if y2 - y1 < min_px:
                continue
            mx, my = CONTEXT * (x2 - x1), CONTEXT * (y2 - y1)
            cx1, cy1 = int(max(0, x1 - mx)), int(max(0, y1 - my))
            cx2, cy2 = int(min(w, x2 + mx)), int(min(h, y2 + my))
            faces.append((image[cy1:cy2, cx1:cx2].copy(), (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1), box.cls))
    return faces


def build_scenes(faces, face_px: int, size: tuple[int, int] = (1920, 1080), seed: int = 0) -> list[Scene]:
    """Every face shrunk to face_px high, GRID faces a scene on a grey camera-noise background, as many scenes
    as it takes to use each face once."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(faces))
    width, height = size
    cols, rows = GRID
    cell_w, cell_h = width // cols, height // rows
    scenes = []
    for start in range(0, len(order), cols * rows):
        frame = np.clip(rng.normal(128, 6, (height, width, 3)), 0, 255).astype(np.uint8)
        boxes, classes = [], []
        for slot, index in enumerate(order[start:start + cols * rows]):
            crop, (fx1, fy1, fx2, fy2), cls = faces[index]
            scale = face_px / (fy2 - fy1)
            small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            sh, sw = small.shape[:2]
            if sw >= cell_w or sh >= cell_h:
                continue  # a face far wider than high: left out rather than overlapping its neighbour
            col, row = slot % cols, slot // cols
            x = col * cell_w + int(rng.integers(0, cell_w - sw))
            y = row * cell_h + int(rng.integers(0, cell_h - sh))
            frame[y:y + sh, x:x + sw] = small
            boxes.append([x + fx1 * scale, y + fy1 * scale, x + fx2 * scale, y + fy2 * scale])
            classes.append(cls)
        scenes.append(Scene(frame, np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, int)))
    return scenes


@dataclass
class SceneCounts:
    faces: int = 0
    found: int = 0  # faces with a box at IoU >= min_iou, any class
    right_class: int = 0  # ... whose best-overlapping box has the face's class
    twice: int = 0  # faces with more than one box at IoU >= min_iou
    extra: int = 0  # boxes on no face at all

    def add(self, truth: np.ndarray, classes: np.ndarray, found_xyxy: np.ndarray, found_cls: np.ndarray,
            min_iou: float = 0.5) -> None:
        self.faces += len(truth)
        if not len(found_xyxy):
            return
        overlap = box_iou(truth, found_xyxy)
        hits = overlap >= min_iou
        self.found += int(hits.any(1).sum())
        self.twice += int((hits.sum(1) > 1).sum())
        best = overlap.argmax(1)
        self.right_class += int((hits.any(1) & (found_cls[best] == classes)).sum())
        self.extra += int((overlap.max(0) < 0.1).sum())

    @property
    def recall(self) -> float:
        return self.found / self.faces if self.faces else 0.0
