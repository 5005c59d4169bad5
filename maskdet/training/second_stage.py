"""Training the second stage (maskdet.inference.second_stage): face crops from a YOLO dataset, a small
Ultralytics classifier on them with the detector's backbone transferred, exported to ONNX.

    crops = build_crops("data/kaggle-ilc/data.yaml", "runs/second_stage/crops")   # train/ val/ test/ by class
    best = train_classifier(crops, backbone="models/best.pt", epochs=15)
    export_classifier(best, "models/second_stage.onnx")

Crops are cut by `face_crop`, the function every run uses, from the labelled boxes. The rare class is
balanced by repeating its train crops (hard links: no extra disk), as the classic crop classifiers did
with class weights.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from maskdet.config import load_dataset_config
from maskdet.data.labels import read_label_file
from maskdet.errors import UserError
from maskdet.fileio import list_images
from maskdet.imageio import ImageTooLarge, ImageUnreadable, read_image_bounded
from maskdet.inference.second_stage import CROP_PX, MARGIN, face_crop

MIN_FACE_PX = 8  # a box smaller than this on its longer side is noise for a classifier


def balance_repeats(counts: Counter, power: float = 0.5) -> dict[str, int]:
    """How many times each class's train crops appear: (largest class / this class) ** power, rounded, at least 1."""
    top = max(counts.values(), default=1)
    return {name: max(1, round((top / n) ** power)) for name, n in counts.items() if n}


def build_crops(data: str | Path, out: str | Path, margin: float = MARGIN, size: int = CROP_PX,
                splits: tuple[str, ...] = ("train", "val", "test"), balance: float = 0.5, force: bool = False,
                progress=lambda n: None) -> dict[str, Counter]:
    """Every labelled face of the dataset's splits as a crop in out/<split>/<class>/ (Ultralytics' classify
    layout); the train split balanced (see balance_repeats). Returns crops per split and class, before balancing."""
    config = load_dataset_config(data)
    out = Path(out)
    if out.exists():
        if not force:
            raise UserError("already exists (pass --force to rebuild it)", out)
        shutil.rmtree(out)
    found: dict[str, Counter] = {}
    skipped: list[Path] = []
    for split in splits:
        if split not in config.split_images or not config.images_dir(split).is_dir():
            continue
        counts: Counter = Counter()
        for name in config.names:
            (out / split / name).mkdir(parents=True, exist_ok=True)
        for image_path in list_images(config.images_dir(split)):
            label = config.labels_dir(split) / f"{image_path.stem}.txt"
            boxes = read_label_file(label, len(config.names)).boxes if label.is_file() else []
            progress(1)
            if not boxes:
                continue
            try:
                image = read_image_bounded(image_path)
            except (OSError, ImageTooLarge, ImageUnreadable):
                skipped.append(image_path)
                continue
            h, w = image.shape[:2]
            for i, label_box in enumerate(boxes):
                box = np.array(label_box.edges) * (w, h, w, h)
                if max(box[2] - box[0], box[3] - box[1]) < MIN_FACE_PX:
                    continue
                name = config.names[label_box.cls]
                target = out / split / name / f"{image_path.stem}_{i}.png"
                cv2.imwrite(str(target), face_crop(image, box, margin, size))
                counts[name] += 1
        found[split] = counts
    if "train" in found and balance > 0:
        for name, repeats in balance_repeats(found["train"], balance).items():
            folder = out / "train" / name
            for crop in sorted(folder.glob("*.png")):
                for r in range(1, repeats):
                    os.link(crop, folder / f"{crop.stem}_r{r}.png")
    if skipped:
        found["skipped"] = Counter({str(p): 1 for p in skipped})
    return found


def train_classifier(crops: str | Path, backbone: str | Path, epochs: int = 15, imgsz: int = CROP_PX, batch: int = 64,
                     project: str | Path = "runs/second_stage", name: str = "train", **overrides) -> Path:
    """Ultralytics' yolo11n-cls with the detector's backbone (its first 10 layers) transferred; returns best.pt.
    Face crops are already centred and square: random crops keep most of the face (scale), no mosaic applies."""
    from ultralytics import YOLO

    model = YOLO("yolo11n-cls.yaml", task="classify")
    model.load(str(backbone))  # Ultralytics transfers every tensor whose name and shape match: the backbone
    settings = {"data": str(crops), "epochs": epochs, "imgsz": imgsz, "batch": batch, "project": str(Path(project).resolve()),
                "name": name, "device": "cpu", "workers": 2, "optimizer": "AdamW", "lr0": 0.001, "scale": 0.2,
                "erasing": 0.2, "plots": True, "exist_ok": True, **overrides}
    model.train(**settings)
    best = Path(settings["project"]) / name / "weights" / "best.pt"
    if not best.is_file():
        raise UserError("training made no best.pt", best.parent)
    return best


def export_classifier(weights: str | Path, target: str | Path, imgsz: int = CROP_PX) -> Path:
    """ONNX with a dynamic batch (all the boxes of a frame in one call), written to `target`."""
    from ultralytics import YOLO

    made = Path(YOLO(str(weights), task="classify").export(format="onnx", imgsz=imgsz, dynamic=True, simplify=True))
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(made), target)
    return target
