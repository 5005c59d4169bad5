#!/usr/bin/env python3
"""mAP50 under what real cameras do to a picture: darker, brighter, low contrast, blur, JPEG, half
resolution, rotation, a colour cast (maskdet/evaluation/corruptions.py).

    python bench/robustness.py --weights models/best.pt --split val            # choose on val
    python bench/robustness.py --weights models/best.pt --split test --json robustness.json   # the card

Each corruption is applied to every photo of the split (boxes follow rotation), the copy is evaluated
with Ultralytics' validator (as val.py does) at the same size, and the drop from the clean split is
printed: the model card's robustness table. The dataset is only read; copies go to a temporary folder.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import read_photo, write_json  # noqa: E402

from maskdet.cli import IMGSZ, ArgumentParser, HelpFormatter  # noqa: E402
from maskdet.config import INFERENCE_IMGSZ, load_dataset_config  # noqa: E402
from maskdet.errors import run_cli  # noqa: E402
from maskdet.evaluation.corruptions import CORRUPTIONS  # noqa: E402
from maskdet.evaluation.validate import evaluate  # noqa: E402
from maskdet.fileio import list_images  # noqa: E402


def corrupted_split(data: str, split: str, name: str, out: Path) -> Path:
    """A data.yaml whose `split` holds every photo of the original with corruption `name` applied."""
    config = load_dataset_config(data)
    images, labels = out / name / split / "images", out / name / split / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    corrupt = CORRUPTIONS[name]
    for image_path in list_images(config.images_dir(split)):
        image = read_photo(image_path)
        label = config.labels_dir(split) / f"{image_path.stem}.txt"
        boxes = np.loadtxt(label, ndmin=2, dtype=np.float32) if label.exists() and label.stat().st_size else np.zeros((0, 5), np.float32)
        image, boxes = corrupt(image, boxes)
        cv2.imwrite(str(images / f"{image_path.stem}.png"), image)
        (labels / f"{image_path.stem}.txt").write_text("".join(f"{int(b[0])} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f} {b[4]:.6f}\n" for b in boxes))
    splits = {s: str(folder) for s, folder in config.split_images.items()}
    splits[split] = str(images)
    target = out / name / "data.yaml"
    target.write_text(yaml.safe_dump({"path": str(out / name), **splits, "names": dict(enumerate(config.names))}, sort_keys=False))
    return target


def map50(weights: str, data: str, split: str, imgsz: int, workdir: Path) -> dict[str, float]:
    table = evaluate(weights, data, split=split, imgsz=imgsz, project=workdir, plots=False).table
    return {cls: round(float(row["mAP50"]), 4) for cls, row in table.iterrows()}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--weights", default=str(ROOT / "models" / "best.pt"), help="model to measure (.pt or .onnx)")
    parser.add_argument("--data", default=str(ROOT / "data.yaml"), help="dataset description")
    parser.add_argument("--split", default="val", choices=["val", "test"], help="choose on val, report test once")
    parser.add_argument("--imgsz", type=IMGSZ, default=INFERENCE_IMGSZ, help="inference size")
    parser.add_argument("--only", nargs="+", choices=sorted(CORRUPTIONS), help="a subset of the corruptions")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not 32 <= args.imgsz <= 4096:
        parser.error(f"--imgsz must be in 32..4096, got {args.imgsz}")

    names = args.only or list(CORRUPTIONS)
    results: dict[str, dict[str, float]] = {}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["clean"] = map50(args.weights, args.data, args.split, args.imgsz, work / "runs")
        print(f"{args.weights} on {args.split} at {args.imgsz} px\n{'corruption':<16} {'mAP50':>6} {'drop':>6}"
              f"  (with_mask / without_mask / incorrect)", flush=True)
        clean = results["clean"]["all"]
        print(f"{'clean':<16} {clean:6.3f} {'':>6}", flush=True)
        for name in names:
            data = corrupted_split(args.data, args.split, name, work / "data")
            results[name] = figures = map50(args.weights, str(data), args.split, args.imgsz, work / "runs")
            per_class = " / ".join(f"{v:.3f}" for k, v in figures.items() if k != "all")
            print(f"{name:<16} {figures['all']:6.3f} {figures['all'] - clean:+6.3f}  ({per_class})", flush=True)
    worst = min((results[n]["all"] - clean, n) for n in names)
    print(f"worst: {worst[1]} {worst[0]:+.3f} mAP50; {len(names)} corruptions in {time.time() - started:.0f} s")
    if args.json:
        write_json(args.json, {"weights": args.weights, "split": args.split, "imgsz": args.imgsz, "mAP50": results})
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
