#!/usr/bin/env python3
"""CPU speed of the shipped model in each form, side by side: INT8 (OpenVINO), fp32 ONNX (ONNX Runtime), .pt.

Every detector sees the same images at the same size; the figure is the median per image of the whole
detector call (preprocess + inference + NMS), in wall time AND in CPU time (user + sys of the process, all
threads), after a warm-up. Per CPU-second is what decides how many cameras one machine watches.

    python bench/model_speed.py                                       # sample photos, the shipped forms
    python bench/model_speed.py --images data/test/images --rounds 2 --json bench/model_speed.json
    python bench/model_speed.py --against old/best.onnx --against models/best_int8.onnx   # any more models
    python bench/model_speed.py --threads 1                           # one core per model (a fleet worker)
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
from benchlib import cpu_flags, cpu_name  # noqa: E402

from maskdet.config import INFERENCE_IMGSZ  # noqa: E402
from maskdet.fileio import list_images  # noqa: E402
from maskdet.inference.detectors import (  # noqa: E402
    DetectSettings,
    OnnxDetector,
    OpenVinoDetector,
    TorchDetector,
    is_openvino,
    warmup,
)

BLOCK = 16  # images a detector runs in one turn
MODELS = ROOT / "models"


def load(path: Path, settings: DetectSettings, imgsz: int | None, threads: int):
    if path.suffix == ".pt":
        import torch

        if threads:
            torch.set_num_threads(threads)
        return TorchDetector(path, settings, imgsz, "cpu")
    if is_openvino(path):
        return OpenVinoDetector(path, settings, None, "cpu", threads)
    return OnnxDetector(path, settings, None, "cpu", threads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", type=Path,
                        default=[MODELS / "best_int8_openvino_model", MODELS / "best.onnx", MODELS / "best.pt"],
                        help="models to time (default: the INT8 OpenVINO model, the fp32 .onnx and the .pt)")
    parser.add_argument("--against", action="append", default=[], type=Path, metavar="MODEL",
                        help="also time this model (.onnx, OpenVINO folder, .pt) in the same loop (repeatable)")
    parser.add_argument("--images", default=str(ROOT / "samples" / "images"), help="folder of images to run on")
    parser.add_argument("--imgsz", type=int, default=INFERENCE_IMGSZ, help="inference size of a .pt")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the images")
    parser.add_argument("--threads", type=int, default=0, help="threads per model (default: every core)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 1000 or not 0 <= args.threads <= 256:
        parser.error("--rounds must be 1..1000 and --threads 0..256")

    settings = DetectSettings(conf=0.25, iou=0.45)
    paths = [p for p in args.models + args.against if p.exists()]
    detectors = {}
    for path in paths:
        detectors[path.name] = load(path, settings, args.imgsz, args.threads)
        warmup(detectors[path.name])
    images = [cv2.imread(str(p)) for p in list_images(args.images)]
    # Detectors take turns in blocks of BLOCK images, in a shuffled order each block: machine noise hits all
    # alike, and a runtime's worker threads, which keep spinning for a while after a call, slow only the first
    # image of the next block. Turns of one image let that spin-over land on every call of whichever detector
    # runs next: two copies of one .onnx measured 1.43x apart that way.
    entries = list(detectors.items())
    shuffle = random.Random(0).shuffle
    wall: dict[str, list[float]] = {k: [] for k in detectors}
    cpu: dict[str, list[float]] = {k: [] for k in detectors}
    for _ in range(args.rounds):
        for start in range(0, len(images), BLOCK):
            shuffle(entries)
            for label, detector in entries:
                for image in images[start:start + BLOCK]:
                    w, c = time.perf_counter(), time.process_time()
                    detector(image)
                    cpu[label].append((time.process_time() - c) * 1e3)
                    wall[label].append((time.perf_counter() - w) * 1e3)
    results = {label: {"wall_ms": round(statistics.median(wall[label]), 1), "cpu_ms": round(statistics.median(cpu[label]), 1)}
               for label in detectors}
    print(f"{cpu_name()}; flags: {cpu_flags()}")
    print(f"{len(images)} images x {args.rounds} rounds, {args.threads or 'all'} threads per model; median per image "
          f"(preprocess + inference + NMS):")
    print(f"  {'model':<28}{'wall ms':>9}{'images/s':>10}{'CPU ms':>9}{'per CPU-s':>11}")
    for label, r in results.items():
        r["images_per_s"] = round(1000 / r["wall_ms"], 1)
        r["images_per_cpu_s"] = round(1000 / r["cpu_ms"], 1)
        print(f"  {label:<28}{r['wall_ms']:9.1f}{r['images_per_s']:10.1f}{r['cpu_ms']:9.1f}{r['images_per_cpu_s']:11.1f}")
    base = "best.onnx" if "best.onnx" in results else next(iter(results))
    for label, r in results.items():
        if label != base:
            print(f"  {label} against {base}: {results[base]['wall_ms'] / r['wall_ms']:.2f}x the speed (wall), "
                  f"{results[base]['cpu_ms'] / r['cpu_ms']:.2f}x the images per CPU-second")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_name(), "flags": cpu_flags(), "threads": args.threads,
                                               "images": len(images), "rounds": args.rounds, "median": results},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
