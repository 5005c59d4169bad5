#!/usr/bin/env python3
"""Test-time augmentation (`detect.py --augment`) against the detector alone, on one split of a YOLO dataset.

    python bench/augment.py --data data/kaggle/data.yaml --split val          # choose on val
    python bench/augment.py --data data/kaggle/data.yaml --split test --json augment.json   # the card, once

Both are scored the way val.py scores a model (conf 0.001, IoU 0.7, every class a box scores over that kept,
Ultralytics' matching and AP), through the detector call detect.py makes (maskdet.evaluation.pipeline_map):
"alone" reproduces val.py's figure for an exported model. An exported model only (.onnx, OpenVINO folder). Also
prints the cost: median wall and CPU milliseconds per photo of the detector call, alone and augmented.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import timed, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter  # noqa: E402
from maskdet.errors import run_cli  # noqa: E402
from maskdet.evaluation.pipeline_map import predict_split, score  # noqa: E402
from maskdet.inference.augment import FlipAugmentedDetector  # noqa: E402
from maskdet.inference.detectors import load_detector  # noqa: E402
from maskdet.models import default_weights  # noqa: E402
from maskdet.settings import DetectSettings  # noqa: E402


def recording(detector):
    """The detector, recording each call's wall and CPU seconds."""
    calls: list[tuple[float, float]] = []

    def call(image):
        det, wall_ms, cpu_ms = timed(detector, image)
        calls.append((wall_ms / 1e3, cpu_ms / 1e3))
        return det

    return call, calls


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True, help="the dataset (YOLO data.yaml)")
    parser.add_argument("--split", default="val", choices=["val", "test"], help="choose on val, report test once")
    parser.add_argument("--weights", default=None, help="the exported detector (default: the shipped one)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    started = time.time()
    weights = Path(args.weights) if args.weights else default_weights()
    settings = DetectSettings(conf=0.001, iou=0.7, max_det=300, multi_label=True)  # as val.py scores
    detector = load_detector(weights, settings)
    out: dict = {"detector": str(weights), "split": args.split}
    for key, candidate in (("alone", detector), ("augmented", FlipAugmentedDetector(detector, settings.conf, settings.max_det))):
        call, calls = recording(candidate)
        predictions = predict_split(args.data, args.split, call, keep_images=False, validator_imgsz=detector.imgsz)
        out[key] = score(predictions, detector.names).as_dict()
        out[key]["ms_per_photo"] = {"wall": round(statistics.median(c[0] for c in calls) * 1e3, 1),
                                    "cpu": round(statistics.median(c[1] for c in calls) * 1e3, 1)}
        ms = out[key]["ms_per_photo"]
        print(f"{key:<10} mAP50 {out[key]['mAP50']:.3f}  mAP50-95 {out[key]['mAP50-95']:.3f}  AP50 {out[key]['AP50']}  "
              f"{ms['wall']:.1f} ms wall / {ms['cpu']:.1f} ms CPU per photo")
    print(f"{args.split} split, {out['alone']['images']} photos, {weights}, {time.time() - started:.0f} s")
    if args.json:
        write_json(args.json, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
