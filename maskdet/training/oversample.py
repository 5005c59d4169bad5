"""Repeat-factor sampling: show the trainer the images that hold rare classes more often.

Ultralytics draws every training image once per epoch, so on the Kaggle data an unmasked face is on
one image in three and a badly worn mask on one in nine. Loss weighting (`cls_pw`) makes each rare box
count more; repeating its images also gives the rare class more augmented views (other crops, scales,
mosaic neighbours), which a small dataset is short of. The rule is LVIS's repeat-factor sampling
(Gupta et al., 2019): a class seen on a fraction f of the images gets r = max(1, sqrt(t / f)), and an
image repeats max r over its classes, rounded. Ultralytics reads a split given as a .txt of image
paths and keeps repeated lines, so the result is such a list.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from maskdet.config import labels_dir_for
from maskdet.data.labels import read_label_file
from maskdet.fileio import atomic_write_text, list_images


def class_repeat_factors(image_classes: list[set[int]], threshold: float) -> dict[int, float]:
    """r = max(1, sqrt(threshold / fraction of images holding the class)), for every class present."""
    counts = Counter(c for classes in image_classes for c in classes)
    n = len(image_classes)
    return {c: max(1.0, math.sqrt(threshold / (k / n))) for c, k in sorted(counts.items())}


def image_repeats(image_classes: list[set[int]], threshold: float) -> list[int]:
    """How many times each image goes into an epoch: its rarest class decides (background images: once)."""
    factors = class_repeat_factors(image_classes, threshold)
    return [max(1, round(max((factors[c] for c in classes), default=1.0))) for classes in image_classes]


@dataclass
class OversampleSummary:
    images: int
    entries: int
    class_repeats: dict[int, int]  # the rounded repeat of an image whose rarest class is this one

    def describe(self, names: tuple[str, ...] | list[str]) -> str:
        repeated = [f"{names[c] if c < len(names) else c} x{r}" for c, r in self.class_repeats.items() if r > 1]
        return (f"oversampling: {self.images} train images -> {self.entries} per epoch"
                + (f" (images with {', '.join(repeated)})" if repeated else " (no class is rare enough to repeat)"))


def write_oversampled_list(images_dir: Path, threshold: float, target: Path) -> OversampleSummary:
    """Write the repeated image list for a train folder; the folder itself is left untouched."""
    images = list_images(images_dir)
    labels_dir = labels_dir_for(images_dir)
    image_classes = []
    for image in images:
        label = labels_dir / f"{image.stem}.txt"
        image_classes.append({box.cls for box in read_label_file(label).boxes} if label.exists() else set())
    repeats = image_repeats(image_classes, threshold)
    lines = [str(image.resolve()) for image, k in zip(images, repeats) for _ in range(k)]
    atomic_write_text(target, "".join(f"{line}\n" for line in lines))
    factors = class_repeat_factors(image_classes, threshold)
    return OversampleSummary(len(images), len(lines), {c: max(1, round(r)) for c, r in factors.items()})
