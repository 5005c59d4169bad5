"""Does the second stage earn its place? Crop accuracy against the detector's own, and the step's mAP by weight.

* crop_accuracy: the classifier alone on the labelled face crops of a split (train_second_stage.py cut them),
  with its confusion matrix: the figure the classic crop-classifier projects quote (about 95 %).
* detector_accuracy: the detector's own class on the same faces, for the boxes it finds (IoU >= 0.5 with a
  label, conf >= 0.25): what the second stage has to beat.
* weight_sweep: the per-frame step's mAP (maskdet.evaluation.pipeline_map) with the classifier mixed in at each
  weight; choose_weight keeps the best on val (0 when nothing beats the detector alone by MIN_GAIN).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from maskdet.evaluation.pipeline_map import SplitPredictions, box_iou, score
from maskdet.fileio import list_images
from maskdet.imageio import read_image_bounded
from maskdet.inference.second_stage import SecondStage, SecondStageConfig, mix

WEIGHTS = tuple(round(w, 2) for w in np.linspace(0, 1, 11))


def confusion_summary(matrix: np.ndarray, names: tuple[str, ...]) -> dict:
    """Rows are the truth, columns the prediction."""
    total = int(matrix.sum())
    return {"accuracy": round(float(np.trace(matrix)) / total, 4) if total else None, "crops": total,
            "per_class": {n: round(float(matrix[i, i]) / max(1, int(matrix[i].sum())), 4) for i, n in enumerate(names)},
            "confusion": {"rows_truth_columns_predicted": list(names), "matrix": matrix.astype(int).tolist()}}


def crop_accuracy(stage: SecondStage, crops_split: Path, names: tuple[str, ...]) -> dict:
    """The classifier on every crop under crops_split/<class>/ (repeats made for balancing skipped)."""
    matrix = np.zeros((len(names), len(names)), int)
    for truth, name in enumerate(names):
        paths = [p for p in list_images(crops_split / name) if not re.search(r"_r\d+$", p.stem)]
        for start in range(0, len(paths), 64):
            crops = [read_image_bounded(p) for p in paths[start:start + 64]]
            for predicted in stage.classifier(crops).argmax(1):
                matrix[truth, predicted] += 1
    return confusion_summary(matrix, names)


def detector_accuracy(predictions: SplitPredictions, names: tuple[str, ...], conf: float = 0.25, iou: float = 0.5,
                      stage: SecondStage | None = None) -> dict:
    """Class accuracy on the faces the detector finds (each label taken by its best box, as Ultralytics' confusion
    matrix does); with `stage`, after the second stage has mixed its opinion in."""
    from maskdet.inference.detections import Detections, Frame

    matrix = np.zeros((len(names), len(names)), int)
    for image, det, (true_xyxy, true_cls) in zip(predictions.images, predictions.detections, predictions.truths):
        keep = det.confidence >= conf
        det = Detections(det.xyxy[keep].copy(), det.confidence[keep].copy(), det.class_id[keep].copy(), det.names)
        if stage is not None and len(det):
            det = stage(Frame(image, "", "", "image"), det)
        if not len(det) or not len(true_cls):
            continue
        overlap = box_iou(true_xyxy, det.xyxy)
        taken: set[int] = set()
        for t in np.argsort(-overlap.max(1)):
            j = int(overlap[t].argmax())
            if overlap[t, j] >= iou and j not in taken:
                taken.add(j)
                matrix[true_cls[t], det.class_id[j]] += 1
    return confusion_summary(matrix, names)


def weight_sweep(predictions: SplitPredictions, names: tuple[str, ...], model: Path,
                 weights: tuple[float, ...] = WEIGHTS) -> dict[float, dict]:
    """The step's mAP at each weight. The classifier sees each photo's boxes once: its probabilities are kept
    (by photo) and only the mixing, which is all a weight changes, is redone per weight."""
    stage = SecondStage(model, names)
    kept = {id(image): stage.probabilities(image, det)
            for image, det in zip(predictions.images, predictions.detections) if len(det)}

    def mixed_at(weight: float):
        def second_stage(frame, det):
            det.class_id = mix(det.class_id, det.confidence, kept[id(frame.image)], weight)
            return det
        return second_stage

    return {weight: score(predictions, names, mixed_at(weight) if weight else None).as_dict() for weight in weights}


MIN_GAIN = 0.005  # of val mAP50: below it, a difference is the noise of 128 photos (a pixel of resizing moves 0.01)


def choose_weight(sweep: dict[float, dict], key: str = "mAP50", min_gain: float = MIN_GAIN) -> float:
    """The weight with the best val figure, the smallest of equals; 0 (the detector alone, no stage to run)
    unless that best beats the detector alone by min_gain."""
    best = max(v[key] for v in sweep.values())
    if 0.0 in sweep and best < sweep[0.0][key] + min_gain:
        return 0.0
    return min(w for w, v in sweep.items() if v[key] >= best - 1e-9)


def write_config(model: Path, weight: float, config: SecondStageConfig, extra: dict | None = None) -> Path:
    import json

    from maskdet.fileio import atomic_write_text
    from maskdet.inference.second_stage import SIDECAR

    path = model.with_name(SIDECAR)
    atomic_write_text(path, json.dumps({"weight": weight, "margin": config.margin, "size": config.size, **(extra or {})},
                                       indent=1) + "\n")
    return path
