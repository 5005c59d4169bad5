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

import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import cpu_flags, cpu_name, read_photos, timed, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import run_cli  # noqa: E402
from maskdet.inference.detectors import letterbox, openvino_xml, to_blob  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--weights", type=Path, default=ROOT / "models" / "best_int8_openvino_model",
                        help="an OpenVINO model folder")
    parser.add_argument("--images", default=str(ROOT / "samples" / "images"), help="folder of images to run on")
    parser.add_argument("--batches", type=number(int, 1, 64), nargs="+", default=[1, 2, 4, 8], help="batch sizes")
    parser.add_argument("--rounds", type=number(int, 1, 1000), default=3, help="passes over the images")
    parser.add_argument("--threads", type=number(int, 0, 256), default=0, help="OpenVINO threads (default: every core)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    photos = read_photos(args.images)
    distinct = len(photos)
    photos = photos * -(-max(args.batches) // distinct)  # too few to fill the largest batch: each one repeated
    xml = openvino_xml(args.weights)
    import openvino as ov

    core = ov.Core()
    size = core.read_model(str(xml)).inputs[0].get_partial_shape()[2].get_length()
    config = {"PERFORMANCE_HINT": "LATENCY", **({"INFERENCE_NUM_THREADS": args.threads} if args.threads else {})}
    requests = {}
    for n in args.batches:
        model = core.read_model(str(xml))
        model.reshape([n, 3, size, size])
        requests[n] = core.compile_model(model, "CPU", config).create_infer_request()
    blobs = [to_blob(letterbox(photo, size)[0]) for photo in photos]
    wall: dict[int, list[float]] = {n: [] for n in args.batches}
    cpu: dict[int, list[float]] = {n: [] for n in args.batches}
    for n, request in requests.items():  # warm-up
        request.infer({0: np.concatenate([blobs[0]] * n)})
    for _ in range(args.rounds):
        for start in range(0, len(blobs) - max(args.batches) + 1, max(args.batches)):
            for n, request in requests.items():
                for i in range(start, start + max(args.batches), n):
                    batch = np.concatenate(blobs[i:i + n])
                    _, wall_ms, cpu_ms = timed(request.infer, {0: batch})
                    cpu[n].append(cpu_ms / n)
                    wall[n].append(wall_ms / n)
    print(f"{cpu_name()}; flags: {cpu_flags()}")
    repeated = f" ({distinct} repeated to fill a batch of {max(args.batches)})" if len(blobs) > distinct else ""
    print(f"{args.weights.name} at {size} px, {len(blobs)} photos{repeated} x {args.rounds} rounds, "
          f"{args.threads or 'all'} threads; network call only, median per photo:")
    print(f"  {'batch':>5}{'wall ms':>9}{'photos/s':>10}{'CPU ms':>8}{'per CPU-s':>11}{'vs batch 1':>12}")
    results = {}
    for n in args.batches:
        w, c = statistics.median(wall[n]), statistics.median(cpu[n])
        results[n] = {"wall_ms": round(w, 1), "cpu_ms": round(c, 1)}
        b1 = statistics.median(cpu[args.batches[0]])
        print(f"  {n:>5}{w:9.1f}{1000 / w:10.1f}{c:8.1f}{1000 / c:11.1f}{b1 / c:11.2f}x")
    if args.json:
        write_json(args.json, {"cpu": cpu_name(), "flags": cpu_flags(), "median_per_photo": results})
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
