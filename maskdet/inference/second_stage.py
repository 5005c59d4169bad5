"""The second stage: a small classifier of face crops that gives the detector a second opinion on the class.

Before YOLO, mask detection was a face finder plus a CNN on each face crop. Here the detector finds the faces
and judges them; this stage looks at each box again, larger and centred, and mixes its class probabilities
with the detector's:

    p = (1 - weight) * p_detector + weight * p_classifier,   class = argmax(p)

where p_detector puts the box's confidence c on its class and spreads the rest evenly over the others, each
kept just under c (the exported detector hands over only its best class, so every other class scored less). The box and its confidence stay the detector's: the
stage changes a class only where the classifier is sure and the detector is not. `weight` is chosen on val
and saved beside the model (second_stage.json), with the crop's margin and size, so that training and every
run cut crops the same way (`face_crop`, used by both).

The classifier is an Ultralytics classification model exported to ONNX: ONNX Runtime runs it, torch is never
imported, so the light install has it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskdet.errors import UserError
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.model_metadata import names_from_metadata

SIDECAR_LIMIT = 65_536  # bytes: the file holds three numbers and the class names
SIDECAR = "second_stage.json"  # beside the .onnx: {"weight", "margin", "size", "names"}
MARGIN = 0.15  # of the box's longer side, on each side: the whole head, as the classic crop classifiers saw it
CROP_PX = 96


def face_crop(image: np.ndarray, box: np.ndarray | list[float], margin: float = MARGIN, size: int = CROP_PX) -> np.ndarray:
    """The square around a box (its longer side plus `margin` on each side), edge pixels repeated where it
    leaves the image, resized to size x size. The one crop, for training and for every run."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    side_px = max(1, int(round(side)))
    h, w = image.shape[:2]
    if left >= 0 and top >= 0 and left + side_px <= w and top + side_px <= h:
        crop = image[top:top + side_px, left:left + side_px]
    else:  # the edge rows and columns repeated, as cv2.BORDER_REPLICATE would, gathering only the crop's pixels
        rows = np.clip(np.arange(top, top + side_px), 0, h - 1)
        cols = np.clip(np.arange(left, left + side_px), 0, w - 1)
        crop = image[np.ix_(rows, cols)]
    interpolation = cv2.INTER_AREA if side_px > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def mix(class_id: np.ndarray, confidence: np.ndarray, classifier: np.ndarray, weight: float) -> np.ndarray:
    """The class of each box after mixing (see the module docstring): (N,) ints."""
    n, k = classifier.shape
    if n == 0 or weight == 0:
        return class_id.copy()
    others = np.minimum((1 - confidence) / max(k - 1, 1), confidence * (1 - 1e-3))  # below the detector's class
    detector = np.repeat(others[:, None], k, axis=1)
    detector[np.arange(n), class_id] = confidence
    return np.argmax((1 - weight) * detector + weight * classifier, axis=1).astype(class_id.dtype)


@dataclass(frozen=True)
class SecondStageConfig:
    weight: float
    margin: float = MARGIN
    size: int = CROP_PX

    @classmethod
    def beside(cls, model: Path) -> SecondStageConfig:
        path = model.with_name(SIDECAR)
        if path.is_file() and path.stat().st_size > SIDECAR_LIMIT:  # it comes with a model from outside
            raise UserError(f"over {SIDECAR_LIMIT:,} bytes: not a second-stage settings file", path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            config = cls(float(raw.get("weight", 0.5)), float(raw.get("margin", MARGIN)), int(raw.get("size", CROP_PX)))
        except (ValueError, TypeError, AttributeError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise UserError("not a second-stage settings file (weight, margin, size)", path) from None
        except OSError as exc:
            raise UserError(f"cannot read: {exc.strerror or exc}", path) from None
        if not (0 <= config.weight <= 1 and 0 <= config.margin <= 1 and 16 <= config.size <= 512):
            raise UserError("weight and margin must be in 0..1 and size in 16..512", path)
        return config


class CropClassifier:
    """The exported classifier, on ONNX Runtime: crops in, class probabilities out."""

    def __init__(self, path: str | Path, names: tuple[str, ...], threads: int = 0):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise UserError("no such second-stage model (train one with python train_second_stage.py)", path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own types for a file that is not a model
            raise UserError(f"not an ONNX model: {str(exc).strip().splitlines()[0][:200]}", path) from None
        self.input = self.session.get_inputs()[0].name
        self.batched = self.session.get_inputs()[0].shape[0] != 1  # a dynamic batch: every crop of a frame in one call
        meta = self.session.get_modelmeta().custom_metadata_map
        # Ultralytics writes the names as a dict literal; a model without them is taken to be in the detector's order
        model_names = names_from_metadata(meta["names"], path) if meta.get("names") else ()
        if meta.get("task", "classify") != "classify" or (model_names and sorted(model_names) != sorted(names)):
            raise UserError(f"the second stage must classify crops into the detector's classes ({', '.join(names)}); "
                            f"this model's are {', '.join(model_names) or 'unknown'}", path)
        # Ultralytics numbers a classifier's classes by folder name (alphabetically): its columns are put in the
        # detector's order here
        self.order = [model_names.index(n) for n in names] if model_names else list(range(len(names)))
        self.names = names
        self.path = path

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, classes) probabilities for N BGR crops of the same size."""
        if not crops:
            return np.zeros((0, len(self.names)), np.float32)
        batch = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in crops]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        if self.batched:
            out = self.session.run(None, {self.input: batch})[0]
        else:
            out = np.concatenate([self.session.run(None, {self.input: batch[i:i + 1]})[0] for i in range(len(batch))])
        return out[:, self.order].astype(np.float32)


class SecondStage:
    """The pipeline's stage 2: `det = stage(frame, det)` with each box's class mixed with the classifier's."""

    def __init__(self, path: str | Path, names: tuple[str, ...], weight: float | None = None, threads: int = 0):
        path = Path(path)
        self.config = SecondStageConfig.beside(path)
        if weight is not None:
            self.config = SecondStageConfig(weight, self.config.margin, self.config.size)
        self.classifier = CropClassifier(path, names, threads)

    def probabilities(self, image: np.ndarray, det: Detections) -> np.ndarray:
        return self.classifier([face_crop(image, box, self.config.margin, self.config.size) for box in det.xyxy])

    def __call__(self, frame: Frame, det: Detections) -> Detections:
        if len(det) == 0 or self.config.weight == 0:
            return det
        classes = mix(det.class_id, det.confidence, self.probabilities(frame.image, det), self.config.weight)
        det.class_id = classes
        return det
