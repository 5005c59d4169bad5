"""Small labelled datasets the tests draw themselves (cartoon faces from samples/make_sample.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")

_spec = importlib.util.spec_from_file_location("make_sample", ROOT / "samples" / "make_sample.py")
make_sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_sample)


def write_yolo_dataset(root: Path, counts: dict[str, int] | None = None, size: tuple[int, int] = (160, 120)) -> Path:
    """data/{split}/{images,labels} with a data.yaml beside it; returns the yaml path."""
    counts = counts or {"train": 8, "val": 4, "test": 4}
    seed = 0
    for split, n in counts.items():
        for _ in range(n):
            img, boxes = make_sample.make_image(seed, size=(480, 320))
            img = cv2.resize(img, size)
            (root / split / "images").mkdir(parents=True, exist_ok=True)
            (root / split / "labels").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / split / "images" / f"im{seed:03d}.png"), img)
            (root / split / "labels" / f"im{seed:03d}.txt").write_text("".join(f"{b.to_line()}\n" for b in boxes))
            seed += 1
    yaml = root / "data.yaml"
    yaml.write_text("path: .\n" + "".join(f"{s}: {s}/images\n" for s in counts) +
                    "names:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES)))
    return yaml


def write_voc_dataset(root: Path, n: int = 12) -> Path:
    """images/, annotations/ (Pascal VOC, as Kaggle ships it) and splits/ lists, like the Kaggle data."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "splits").mkdir()
    stems = []
    for i in range(n):
        img, boxes = make_sample.make_image(i)
        h, w = img.shape[:2]
        stem = f"face{i}"
        stems.append(stem)
        cv2.imwrite(str(root / "images" / f"{stem}.png"), img)
        objects = "".join(
            f"<object><name>{NAMES[b.cls]}</name><bndbox><xmin>{int(x1 * w)}</xmin><ymin>{int(y1 * h)}</ymin>"
            f"<xmax>{int(x2 * w)}</xmax><ymax>{int(y2 * h)}</ymax></bndbox></object>"
            for b in boxes for x1, y1, x2, y2 in [b.edges]
        )
        (root / "annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.png</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objects}</annotation>")
    cut = [0, n // 2, 3 * n // 4, n]
    for k, split in enumerate(("train", "val", "test")):
        (root / "splits" / f"{split}.txt").write_text("\n".join(stems[cut[k]:cut[k + 1]]) + "\n")
    return root
