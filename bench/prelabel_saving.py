#!/usr/bin/env python3
"""How much labelling work pre-labelling saves: the loop replayed on photos the model never saw.

    python bench/prelabel_saving.py                       # Kaggle val and test splits, models/best.onnx

Each photo of the Kaggle val and test splits (the shipped model trained on train only) is
pre-labelled as labeling/prelabel.py does, and its boxes are compared with the true labels (the
Kaggle VOC XML, converted by the project's converter) as a person correcting them would
(maskdet.data.corrections): boxes kept as they are, fixed (class or position), deleted, drawn.
The work is counted in labelImg actions (draw 2, fix class 1, move 2, delete 1) and compared with
drawing every true box by hand. The model runs once per photo down to the lowest threshold; each
threshold keeps the boxes at or above it (NMS keeps the same boxes above a threshold either way).
The default --conf is the threshold with the fewest actions on VAL; TEST confirms it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import cpu_name  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter  # noqa: E402
from maskdet.config import load_dataset_config  # noqa: E402
from maskdet.data.convert import image_size  # noqa: E402
from maskdet.data.corrections import Corrections, count_corrections  # noqa: E402
from maskdet.data.prelabel import PRELABEL_CONF  # noqa: E402
from maskdet.data.split import read_stem_list  # noqa: E402
from maskdet.data.voc import parse_voc, voc_to_boxes  # noqa: E402
from maskdet.errors import run_cli  # noqa: E402
from maskdet.inference.detectors import DetectSettings, load_detector  # noqa: E402
from maskdet.inference.sources import read_image  # noqa: E402
from maskdet.progress import progress  # noqa: E402

THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7)


def replay(kaggle: Path, split: str, detector, class_ids: dict[str, int]) -> list[tuple[list, list]]:
    """(predicted (box, conf) pairs, true boxes) for every photo of the split."""
    photos = []
    for stem in progress(read_stem_list(kaggle / "splits" / f"{split}.txt"), desc=split, unit="photo"):
        image_path = kaggle / "images" / f"{stem}.png"
        truth, _ = voc_to_boxes(parse_voc(kaggle / "annotations" / f"{stem}.xml"), image_size(image_path), class_ids)
        image = read_image(image_path)
        det = detector(image)
        h, w = image.shape[:2]
        photos.append((list(zip(det.yolo_boxes(w, h), det.confidence.tolist())), truth))
    return photos


def tally(photos: list[tuple[list, list]], threshold: float) -> Corrections:
    total = Corrections()
    for predicted, truth in photos:
        total.add(count_corrections(predicted, truth, threshold))
    return total


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--kaggle", default=str(ROOT.parent / "shared" / "datasets" / "kaggle-facemask"),
                        help="Kaggle face-mask folder: images/, annotations/ (VOC), splits/")
    parser.add_argument("--weights", default=str(ROOT / "models" / "best.onnx"), help=".onnx or .pt model")
    parser.add_argument("--splits", nargs="+", default=["val", "test"], help="splits to replay (the first chooses --conf)")
    args = parser.parse_args(argv)

    kaggle = Path(args.kaggle)
    if not (kaggle / "splits").is_dir():
        print(f"error: {kaggle}: no Kaggle face-mask dataset here (images/, annotations/, splits/); pass --kaggle", file=sys.stderr)
        return 2
    class_ids = load_dataset_config(ROOT / "data.yaml").class_ids
    detector = load_detector(args.weights, DetectSettings(conf=min(THRESHOLDS)))
    print(f"{args.weights} on the Kaggle {' and '.join(args.splits)} splits; CPU: {cpu_name()}, "
          f"{len(os.sched_getaffinity(0))} cores")
    best = None
    for split in args.splits:
        start = time.perf_counter()
        photos = replay(kaggle, split, detector, class_ids)
        print(f"\n{split}: {len(photos)} photos, {sum(len(t) for _, t in photos)} true boxes "
              f"({time.perf_counter() - start:.0f} s)")
        print("| --conf | kept | fix (class / move) | delete | draw | actions | by hand | work saved |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows = {t: tally(photos, t) for t in THRESHOLDS}
        for t, c in rows.items():
            mark = " (default)" if abs(t - PRELABEL_CONF) < 1e-9 else ""
            print(f"| {t:.2f}{mark} | {c.kept} | {c.fixed} ({c.fixed_class} / {c.fixed_box}) | {c.deleted} | {c.drawn} | "
                  f"{c.actions} | {c.by_hand} | **{100 * c.saved:.1f}%** |")
        if best is None:
            best = min(rows, key=lambda t: rows[t].actions)
            print(f"fewest actions on {split}: --conf {best:.2f}")
    print(f"\ndefault --conf in maskdet/data/prelabel.py: {PRELABEL_CONF}; chosen on {args.splits[0]}: {best:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
