#!/usr/bin/env python3
"""How much labelling work pre-labelling saves: the loop replayed on photos the model never saw.

    python bench/prelabel_saving.py                       # Kaggle val and test splits, models/best.onnx
    python bench/prelabel_saving.py --kaggle path/to/kaggle-facemask --json bench/prelabel_saving.json

Each photo of the Kaggle val and test splits (the shipped model trained on train only) is
pre-labelled as labeling/prelabel.py does, and its boxes are compared with the true labels (the
Kaggle VOC XML, converted by the project's converter) as a person correcting them would
(maskdet.data.corrections): boxes kept as they are, fixed (class or position), deleted, drawn.
The work is counted in labelImg actions (draw 2, fix class 1, move 2, delete 1) and compared with
drawing every true box by hand. The model runs once per photo down to the lowest threshold; each
threshold keeps the boxes at or above it (NMS keeps the same boxes above a threshold either way).
The default --conf is the threshold with the fewest actions on VAL; TEST confirms it. The photos are
those of the project's fixed split (--kaggle's splits/), which the shipped model's train split is not
part of; the train split is refused, as the model has seen its photos and would flatter the saving.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import add_kaggle_arg, cpu_name, kaggle_split, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter  # noqa: E402
from maskdet.config import load_dataset_config  # noqa: E402
from maskdet.data.convert import image_size  # noqa: E402
from maskdet.data.corrections import Corrections, count_corrections  # noqa: E402
from maskdet.data.prelabel import PRELABEL_CONF  # noqa: E402
from maskdet.data.voc import parse_voc, voc_to_boxes  # noqa: E402
from maskdet.errors import run_cli  # noqa: E402
from maskdet.inference.detectors import DetectSettings, load_detector  # noqa: E402
from maskdet.inference.sources import read_image  # noqa: E402
from maskdet.progress import progress  # noqa: E402

THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7)


def replay(kaggle: Path, stems: list[str], split: str, detector, class_ids: dict[str, int]) -> list[tuple[list, list]]:
    """(predicted (box, conf) pairs, true boxes) for every photo of the split."""
    photos = []
    for stem in progress(stems, desc=split, unit="photo"):
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


def unseen_split(text: str) -> str:
    """An argparse type: a split the shipped model never trained on."""
    if text == "train":
        raise argparse.ArgumentTypeError("the shipped model was trained on the train split's photos, so replaying them "
                                         "would flatter the saving: give val and/or test")
    if text not in ("val", "test"):
        raise argparse.ArgumentTypeError(f"must be val or test, got {text!r}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_kaggle_arg(parser, "images/, annotations/ (VOC), splits/ (the project's fixed split)")
    parser.add_argument("--weights", default=str(ROOT / "models" / "best.onnx"), help=".onnx or .pt model")
    parser.add_argument("--splits", nargs="+", type=unseen_split, default=["val", "test"],
                        help="splits to replay, val and/or test (the first chooses --conf; train is refused: the "
                             "model trained on it)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if len(set(args.splits)) < len(args.splits):
        parser.error(f"--splits names a split twice: {' '.join(args.splits)}")

    kaggle = Path(args.kaggle)
    stems = {split: kaggle_split(kaggle, split, "--kaggle") for split in args.splits}  # before the model loads
    class_ids = load_dataset_config(ROOT / "data.yaml").class_ids
    detector = load_detector(args.weights, DetectSettings(conf=min(THRESHOLDS)))
    print(f"{args.weights} on the Kaggle {' and '.join(args.splits)} splits; CPU: {cpu_name()}")
    best = None
    figures = {"weights": args.weights, "cpu": cpu_name(), "default_conf": PRELABEL_CONF, "splits": {}}
    for split in args.splits:
        start = time.perf_counter()
        photos = replay(kaggle, stems[split], split, detector, class_ids)
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
        figures["splits"][split] = {
            "photos": len(photos), "true_boxes": sum(len(t) for _, t in photos),
            "by_conf": {f"{t:.2f}": {"kept": c.kept, "fixed_class": c.fixed_class, "fixed_box": c.fixed_box,
                                     "deleted": c.deleted, "drawn": c.drawn, "actions": c.actions,
                                     "by_hand": c.by_hand, "saved": round(c.saved, 4)} for t, c in rows.items()}}
    print(f"\ndefault --conf in maskdet/data/prelabel.py: {PRELABEL_CONF}; chosen on {args.splits[0]}: {best:.2f}")
    if args.json:
        write_json(args.json, {**figures, "chosen_conf": best, "chosen_on": args.splits[0]})
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
