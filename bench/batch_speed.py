#!/usr/bin/env python3
"""Does batching pay on a CPU? The INT8 OpenVINO model run on batches of 1, 2, 4 and 8 photos.

The exported model has a fixed 1x3xSxS input; OpenVINO reshapes it to Nx3xSxS at load (the IR allows it),
so the same weights run batch N in one call. Letterbox and decode stay per photo (detect.py's own code);
only the network call is timed, as that is the part batching can change. The batch sizes take turns, so
machine noise hits all alike; medians per photo, wall and CPU (user + sys, all threads).

    python bench/batch_speed.py                                   # the shipped INT8 model, sample photos
    python bench/batch_speed.py --images data/test/images --batches 1 2 4 8 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import cpu_flags, cpu_name  # noqa: E402

from maskdet.fileio import list_images  # noqa: E402
from maskdet.inference.detectors import letterbox, openvino_xml, to_blob  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=ROOT / "models" / "best_int8_openvino_model",
                        help="an OpenVINO model folder")
    parser.add_argument("--images", default=str(ROOT / "samples" / "images"), help="folder of images to run on")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8], help="batch sizes")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the images")
    parser.add_argument("--threads", type=int, default=0, help="OpenVINO threads (default: every core)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if any(not 1 <= b <= 64 for b in args.batches) or not 1 <= args.rounds <= 1000:
        parser.error("--batches must be 1..64 and --rounds 1..1000")
    import openvino as ov

    core = ov.Core()
    xml = openvino_xml(args.weights)
    size = core.read_model(str(xml)).inputs[0].get_partial_shape()[2].get_length()
    config = {"PERFORMANCE_HINT": "LATENCY", **({"INFERENCE_NUM_THREADS": args.threads} if args.threads else {})}
    requests = {}
    for n in args.batches:
        model = core.read_model(str(xml))
        model.reshape([n, 3, size, size])
        requests[n] = core.compile_model(model, "CPU", config).create_infer_request()
    blobs = [to_blob(letterbox(cv2.imread(str(p)), size)[0]) for p in list_images(args.images)]
    wall: dict[int, list[float]] = {n: [] for n in args.batches}
    cpu: dict[int, list[float]] = {n: [] for n in args.batches}
    for n, request in requests.items():  # warm-up
        request.infer({0: np.concatenate([blobs[0]] * n)})
    for _ in range(args.rounds):
        for start in range(0, len(blobs) - max(args.batches) + 1, max(args.batches)):
            for n, request in requests.items():
                for i in range(start, start + max(args.batches), n):
                    batch = np.concatenate(blobs[i:i + n])
                    w, c = time.perf_counter(), time.process_time()
                    request.infer({0: batch})
                    cpu[n].append((time.process_time() - c) * 1e3 / n)
                    wall[n].append((time.perf_counter() - w) * 1e3 / n)
    print(f"{cpu_name()}; flags: {cpu_flags()}")
    print(f"{args.weights.name} at {size} px, {len(blobs)} photos x {args.rounds} rounds, "
          f"{args.threads or 'all'} threads; network call only, median per photo:")
    print(f"  {'batch':>5}{'wall ms':>9}{'photos/s':>10}{'CPU ms':>8}{'per CPU-s':>11}{'vs batch 1':>12}")
    results = {}
    for n in args.batches:
        w, c = statistics.median(wall[n]), statistics.median(cpu[n])
        results[n] = {"wall_ms": round(w, 1), "cpu_ms": round(c, 1)}
        b1 = statistics.median(cpu[args.batches[0]])
        print(f"  {n:>5}{w:9.1f}{1000 / w:10.1f}{c:8.1f}{1000 / c:11.1f}{b1 / c:11.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_name(), "flags": cpu_flags(), "median_per_photo": results},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
