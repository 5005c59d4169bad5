"""mAP of the per-frame step itself (detector, then the second stage), on a split of a YOLO dataset.

Ultralytics' validator (val.py) runs the network alone. A second stage changes classes after the detector,
so its effect is measured here: every photo goes through the same detector call and SecondStage that
detect.py runs, at the validator's conf=0.001 and iou=0.7, and the boxes are matched to the labels the way
Ultralytics matches them (greedy in confidence order, the best unclaimed label of the right class per IoU
threshold 0.50:0.05:0.95) and scored with its `ap_per_class`. With the detector decoding every class over
conf (DetectSettings.multi_label) and the photos loaded as the validator loads them (validator_imgsz), this
reproduces val.py's figures for an exported model to the last digit (val.py --augment relies on it;
tests/test_kaggle_integration.py checks its figures against the card's). detect.py's own single-label boxes
score about 0.006 lower.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from maskdet.config import load_dataset_config
from maskdet.data.labels import read_label_file
from maskdet.fileio import list_images
from maskdet.imageio import read_image_bounded
from maskdet.inference.detections import Detections, Frame, box_iou  # noqa: F401  (box_iou: imported from here too)

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def match(pred_xyxy: np.ndarray, pred_cls: np.ndarray, true_xyxy: np.ndarray, true_cls: np.ndarray) -> np.ndarray:
    """(N preds, 10) correct at each IoU threshold; preds must be in descending confidence order."""
    correct = np.zeros((len(pred_cls), len(IOU_THRESHOLDS)), bool)
    if len(pred_cls) == 0 or len(true_cls) == 0:
        return correct
    iou = box_iou(true_xyxy, pred_xyxy) * (true_cls[:, None] == pred_cls[None, :])
    claimed = np.zeros((len(true_cls), len(IOU_THRESHOLDS)), bool)
    columns = np.arange(len(IOU_THRESHOLDS))
    for j in np.flatnonzero((iou >= IOU_THRESHOLDS.min()).any(0)):
        available = np.where(claimed, 0, iou[:, j, None])
        best = available.argmax(0)
        correct[j] = available[best, columns] >= IOU_THRESHOLDS
        claimed[best, columns] |= correct[j]
    return correct


@dataclass
class PipelineMap:
    names: tuple[str, ...]
    map50: float
    map50_95: float
    ap50: dict[str, float]  # per class
    images: int
    # per class, as Ultralytics' validator reports them: P and R at the confidence of the best mean F1, AP50-95,
    # and the labelled faces (classes with no label are left out, as there)
    precision: dict[str, float] = field(default_factory=dict)
    recall: dict[str, float] = field(default_factory=dict)
    ap50_95: dict[str, float] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    images_with: dict[str, int] = field(default_factory=dict)  # photos with at least one face of the class

    def as_dict(self) -> dict:
        return {"mAP50": round(self.map50, 4), "mAP50-95": round(self.map50_95, 4),
                "AP50": {k: round(v, 4) for k, v in self.ap50.items()}, "images": self.images}


@dataclass
class SplitPredictions:
    """What the detector made of each photo (kept so that several second-stage weights are scored on one pass)."""

    images: list[np.ndarray | None]
    detections: list[Detections]
    truths: list[tuple[np.ndarray, np.ndarray]]  # xyxy, class per photo


def as_validator_loads(image: np.ndarray, imgsz: int) -> np.ndarray:
    """The photo as Ultralytics' validator loads it before letterboxing: its longer side resized to imgsz, the
    other rounded up. detect.py letterboxes the photo itself (rounding to nearest), and a pixel's difference moves
    single scores by a few hundredths: 0.01 of val mAP50 on 128 photos. Scoring through this makes an exported
    model's figures the ones val.py prints."""
    h, w = image.shape[:2]
    r = imgsz / max(h, w)
    if r == 1:
        return image
    size = (min(math.ceil(w * r), imgsz), min(math.ceil(h * r), imgsz))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR if r > 1 else cv2.INTER_AREA)


def predict_split(data: str, split: str, detector, progress: Callable[[int], None] = lambda n: None,
                  keep_images: bool = True, validator_imgsz: int | None = None) -> SplitPredictions:
    """Every photo of the split through `detector`; with `validator_imgsz`, each loaded as Ultralytics' validator
    loads it for that size (as_validator_loads), the labels scaled alike."""
    config = load_dataset_config(data)
    images, detections, truths = [], [], []
    for path in list_images(config.images_dir(split)):
        image = read_image_bounded(path)
        if validator_imgsz:
            image = as_validator_loads(image, validator_imgsz)
        h, w = image.shape[:2]
        label = config.labels_dir(split) / f"{path.stem}.txt"
        boxes = read_label_file(label, len(config.names)).boxes if label.is_file() else []
        xyxy = (np.array([b.edges for b in boxes]) * (w, h, w, h)).reshape(-1, 4)
        truths.append((xyxy, np.array([b.cls for b in boxes], int)))
        detections.append(detector(image))
        images.append(image if keep_images else None)
        progress(1)
    return SplitPredictions(images, detections, truths)


PhotoMatches = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # correct (n, 10), confidence, class, true classes


def photo_matches(predictions: SplitPredictions,
                  second_stage: Callable[[Frame, Detections], Detections] | None = None) -> list[PhotoMatches]:
    """Each photo's boxes matched to its labels (its Detections passed through `second_stage` first, on a copy):
    what mAP is computed from, kept per photo so that photos can be resampled (maskdet.evaluation.bootstrap)."""
    out = []
    for image, det, (true_xyxy, true_cls) in zip(predictions.images, predictions.detections, predictions.truths):
        det = Detections(det.xyxy.copy(), det.confidence.copy(), det.class_id.copy(), det.names)
        if second_stage is not None and len(det):
            det = second_stage(Frame(image, "", "", "image", 0, 0.0, 0.0, 0.0), det)
        order = np.argsort(-det.confidence, kind="stable")
        out.append((match(det.xyxy[order], det.class_id[order], true_xyxy, true_cls), det.confidence[order],
                    det.class_id[order], true_cls))
    return out


def score(predictions: SplitPredictions, names: tuple[str, ...],
          second_stage: Callable[[Frame, Detections], Detections] | None = None) -> PipelineMap:
    """mAP of the predictions, each photo's Detections passed through `second_stage` first (on a copy)."""
    return score_matches(photo_matches(predictions, second_stage), names)


def score_matches(matches: list[PhotoMatches], names: tuple[str, ...]) -> PipelineMap:
    """mAP of matched photos, with Ultralytics' ap_per_class (the validator's)."""
    from ultralytics.utils.metrics import ap_per_class

    correct, confidence, predicted, true_classes = zip(*matches)  # a split holds at least one photo
    all_true = np.concatenate(true_classes).astype(int)
    results = ap_per_class(np.concatenate(correct), np.concatenate(confidence), np.concatenate(predicted), all_true,
                           names=dict(enumerate(names)))
    precision, recall, ap, classes = results[2], results[3], results[5], results[6]
    labelled = np.bincount(all_true, minlength=len(names))
    per_class = lambda values: {names[c]: float(values[i]) for i, c in enumerate(classes)}  # noqa: E731
    return PipelineMap(names, float(ap[:, 0].mean()) if len(ap) else 0.0, float(ap.mean()) if len(ap) else 0.0,
                       per_class(ap[:, 0]), len(matches),
                       per_class(precision), per_class(recall), per_class(ap.mean(1)),
                       {names[c]: int(labelled[c]) for c in classes},
                       {name: sum(int((t == c).any()) for t in true_classes) for c, name in enumerate(names)})
