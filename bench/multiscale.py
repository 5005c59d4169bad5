#!/usr/bin/env python3
"""Multi-scale test-time augmentation, measured: one network run at several input sizes (and mirrored), the views'
boxes fused as `detect.py --augment` fuses its two, on one split of a YOLO dataset.

    python export.py --weights s832/best.pt --imgsz 832      # the shipped best.pt copied to s832/, exported at 832
    python bench/multiscale.py --data data/kaggle/data.yaml --split val --view models/best.onnx --view s832/best.onnx

Every combination of the views given is scored, each alone and mirrored (`+flip`: the view and its mirror image),
the way val.py scores a model (conf 0.001, IoU 0.7, Ultralytics' matching and AP; photos loaded as the validator
loads them for the first view's size), so the first view alone reproduces val.py's figure for it. The cost is the
median CPU milliseconds per photo of each view's detector call, summed over a combination's views (a mirrored view
counts twice). Exported models only (.onnx, OpenVINO folder): each has its own input size baked in.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import cpu_flags, cpu_name, timed, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402
from maskdet.evaluation.pipeline_map import SplitPredictions, predict_split, score  # noqa: E402
from maskdet.inference.augment import FlipAugmentedDetector, fuse_views  # noqa: E402
from maskdet.inference.detectors import load_detector  # noqa: E402
from maskdet.settings import DetectSettings  # noqa: E402

MAX_VIEWS = 4  # combinations grow as 2^views; four sizes are already more CPU than any camera would spend


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True, help="the dataset (YOLO data.yaml)")
    parser.add_argument("--split", default="val", choices=["val", "test"], help="choose on val, report test once")
    parser.add_argument("--view", action="append", required=True, metavar="MODEL",
                        help="an exported detector (one network, exported at one size each); give it 1 to 4 times, "
                             "the first is the baseline")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if len(args.view) > MAX_VIEWS:
        raise UserError(f"--view: at most {MAX_VIEWS} views, got {len(args.view)}")
    for view in args.view:
        if not Path(view).exists():
            raise UserError("--view: no such model (export.py --imgsz N makes one)", view)

    started = time.time()
    settings = DetectSettings(conf=0.001, iou=0.7, max_det=300, multi_label=True)  # as val.py scores
    detectors = [load_detector(Path(v), settings) for v in args.view]
    names = detectors[0].names
    if any(d.names != names for d in detectors):
        raise UserError("--view: the views must be one network (the same classes); these differ")
    sizes = [d.imgsz for d in detectors]
    predictions = predict_split(args.data, args.split, lambda image: None, keep_images=True, validator_imgsz=sizes[0])
    views: dict[tuple[int, bool], list] = {}
    cpu_ms: dict[tuple[int, bool], float] = {}
    for index, detector in enumerate(detectors):
        for flip in (False, True):
            call = FlipAugmentedDetector(detector, settings.conf, settings.max_det) if flip else detector
            timings, found = [], []
            for image in predictions.images:
                det, _wall, cpu = timed(call, image)
                found.append(det)
                timings.append(cpu)
            views[index, flip], cpu_ms[index, flip] = found, statistics.median(timings)
            print(f"view {sizes[index]} px{' +flip' if flip else ''}: {cpu_ms[index, flip]:.1f} CPU ms a photo", flush=True)

    rows = []
    for count in range(1, len(detectors) + 1):
        for chosen in itertools.combinations(range(len(detectors)), count):
            for flip in (False, True):
                keys = [(i, flip) for i in chosen]
                per_photo = [views[keys[0]][n] if len(keys) == 1 else fuse_views([views[k][n] for k in keys], max_det=300)
                             for n in range(len(predictions.images))]
                figures = score(SplitPredictions(predictions.images, per_photo, predictions.truths), names).as_dict()
                label = "+".join(str(sizes[i]) for i in chosen) + (" +flip" if flip else "")
                cost = sum(cpu_ms[k] for k in keys)
                rows.append({"views": label, **figures, "cpu_ms": round(cost, 1),
                             "cpu_vs_first": round(cost / cpu_ms[0, False], 2)})
    print(f"\n{args.split} split, {rows[0]['images']} photos; {cpu_name()} ({cpu_flags()})")
    print(f"{'views':<22}{'mAP50':>7}{'50-95':>7}  AP50 per class        CPU ms  vs first")
    for row in rows:
        ap = " / ".join(f"{v:.3f}" for v in row["AP50"].values())
        print(f"{row['views']:<22}{row['mAP50']:>7.3f}{row['mAP50-95']:>7.3f}  {ap:<22}{row['cpu_ms']:>7.1f}"
              f"{row['cpu_vs_first']:>8.2f}x")
    print(f"{len(rows)} combinations in {time.time() - started:.0f} s")
    if args.json:
        write_json(args.json, {"split": args.split, "views": args.view, "rows": rows}, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
