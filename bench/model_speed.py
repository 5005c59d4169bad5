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

import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import cpu_flags, cpu_name, read_photos, same_size, stride_imgsz, timed, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.config import INFERENCE_IMGSZ  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402
from maskdet.inference.detectors import DetectSettings, load_detector  # noqa: E402

BLOCK = 16  # images a detector runs in one turn
MODELS = ROOT / "models"


SHIPPED = (MODELS / "best_int8_openvino_model", MODELS / "best.onnx", MODELS / "best.pt")


def load(path: Path, settings: DetectSettings, imgsz: int, threads: int):
    """detect.py's loader (warmed up), at `imgsz` whatever the form (same_size has checked that a fixed-size export
    takes it)."""
    if path.suffix == ".pt":
        import torch

        if threads:
            torch.set_num_threads(threads)
        return load_detector(path, settings, imgsz, "cpu")
    return load_detector(path, settings, imgsz, "cpu", threads=threads)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--models", nargs="+", type=Path, default=None,
                        help="models to time (default: those of the INT8 OpenVINO model, the fp32 .onnx and the .pt "
                             "that are in models/)")
    parser.add_argument("--against", action="append", default=[], type=Path, metavar="MODEL",
                        help="also time this model (.onnx, OpenVINO folder, .pt) in the same loop (repeatable)")
    parser.add_argument("--images", default=str(ROOT / "samples" / "images"), help="folder of images to run on")
    parser.add_argument("--imgsz", type=stride_imgsz, default=None,
                        help="inference size of every model, a multiple of 32 (default: the size the exports are "
                             f"fixed at, else {INFERENCE_IMGSZ}); a fixed-size export of another size is refused")
    parser.add_argument("--rounds", type=number(int, 1, 1000), default=3, help="passes over the images")
    parser.add_argument("--threads", type=number(int, 0, 256), default=0, help="threads per model (default: every core)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    images = read_photos(args.images)  # a bad photo is said before minutes of loading
    settings = DetectSettings(conf=0.25, iou=0.45)
    paths = (args.models or [p for p in SHIPPED if p.exists()]) + args.against
    names = [path.name for path in paths]
    imgsz = same_size(paths, args.imgsz) or INFERENCE_IMGSZ  # every model at one size, or no side-by-side figure
    detectors = {}
    for path in paths:  # a name the table can tell apart: the file's, or its whole path where two share it
        label = path.name if names.count(path.name) == 1 else str(path)
        if label in detectors:
            raise UserError("this model is given twice", path)
        detectors[label] = load(path, settings, imgsz, args.threads)
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
                    _, wall_ms, cpu_ms = timed(detector, image)
                    cpu[label].append(cpu_ms)
                    wall[label].append(wall_ms)
    results = {label: {"wall_ms": round(statistics.median(wall[label]), 1), "cpu_ms": round(statistics.median(cpu[label]), 1)}
               for label in detectors}
    print(f"{cpu_name()}; flags: {cpu_flags()}")
    print(f"{len(images)} images x {args.rounds} rounds at {imgsz} px, {args.threads or 'all'} threads per model; median per image "
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
        write_json(args.json, {"cpu": cpu_name(), "flags": cpu_flags(), "threads": args.threads, "imgsz": imgsz,
                               "images": len(images), "rounds": args.rounds, "median": results})
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
