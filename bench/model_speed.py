#!/usr/bin/env python3
"""CPU speed of the shipped model, .pt (PyTorch via Ultralytics) and .onnx (ONNX Runtime), side by side.

Both detectors see the same images at the same size, alternating image by image so that
machine noise hits both alike; the figure is the median milliseconds per image for the whole
detector call (preprocess + inference + NMS), after a warm-up.

    python bench/model_speed.py                                  # sample photo, models/best.*
    python bench/model_speed.py --images data/test/images --json bench/model_speed.json
    python bench/model_speed.py --against old/best.onnx   # another .onnx (at its own size) in the same loop
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from maskdet.config import INFERENCE_IMGSZ  # noqa: E402
from maskdet.fileio import list_images  # noqa: E402
from maskdet.inference.detectors import DetectSettings, OnnxDetector, TorchDetector, warmup  # noqa: E402

BLOCK = 16  # images a detector runs in one turn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(ROOT / "models" / "best.pt"), help=".pt model; its .onnx sibling is timed too")
    parser.add_argument("--images", default=str(ROOT / "samples" / "images"), help="folder of images to run on")
    parser.add_argument("--imgsz", type=int, default=INFERENCE_IMGSZ, help="inference size")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the images")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--against", action="append", default=[], metavar="ONNX",
                        help="also time this .onnx model (at the size it was exported at), in the same loop: "
                             "a new model against the one it replaces (repeatable)")
    args = parser.parse_args()

    pt = Path(args.weights)
    settings = DetectSettings(conf=0.25, iou=0.45)
    detectors = {".pt (PyTorch)": TorchDetector(pt, settings, args.imgsz, "cpu"),
                 ".onnx (ONNX Runtime)": OnnxDetector(pt.with_suffix(".onnx"), settings, args.imgsz, "cpu")}
    for other in args.against:
        detector = OnnxDetector(Path(other), settings, None, "cpu")
        detectors[f"{other} ({detector.imgsz} px)"] = detector
    for detector in detectors.values():
        warmup(detector)
    images = [cv2.imread(str(p)) for p in list_images(args.images)]
    # Detectors take turns in blocks of BLOCK images, in a shuffled order each block: machine noise hits all
    # alike, and a runtime's worker threads, which keep spinning for a while after a call, slow only the first
    # image of the next block. Turns of one image let that spin-over land on every call of whichever detector
    # runs next: two copies of one .onnx measured 1.43x apart that way.
    entries = list(detectors.items())
    shuffle = random.Random(0).shuffle
    times: dict[str, list[float]] = {k: [] for k in detectors}
    for _ in range(args.rounds):
        for start in range(0, len(images), BLOCK):
            shuffle(entries)
            for label, detector in entries:
                for image in images[start:start + BLOCK]:
                    t = time.perf_counter()
                    detector(image)
                    times[label].append((time.perf_counter() - t) * 1e3)
    results = {label: round(statistics.median(v), 1) for label, v in times.items()}
    print(f"{len(images)} images x {args.rounds} rounds, imgsz {args.imgsz}, median ms per image (preprocess + inference + NMS):")
    for label, ms in results.items():
        print(f"  {label:<22} {ms:6.1f} ms  ({1000 / ms:.1f} images/s)")
    pt_ms, onnx_ms = results[".pt (PyTorch)"], results[".onnx (ONNX Runtime)"]
    print(f"  ONNX Runtime is {pt_ms / onnx_ms:.2f}x the speed of PyTorch here")
    for label in list(results)[2:]:
        print(f"  {pt.with_suffix('.onnx').name} at {args.imgsz} px is {results[label] / onnx_ms:.2f}x the speed of {label}")
    if args.json:
        Path(args.json).write_text(json.dumps({"imgsz": args.imgsz, "images": len(images), "median_ms": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
