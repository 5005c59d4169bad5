#!/usr/bin/env python3
"""Sliced inference (`--tile`) on camera-sized scenes of real small faces: recall with and without tiles, and
what it costs per frame.

    python bench/tiles.py --data data/kaggle/data.yaml --split test                 # 22-px faces, 480-px tiles
    python bench/tiles.py --data data/kaggle/data.yaml --face-px 16 --tile 480 640 --json tiles.json

Every labelled face of the split at least --min-px high is cut out with its context, shrunk to --face-px high
and laid on 1920x1080 scenes, 40 a frame (maskdet/evaluation/small_faces.py). Each scene goes through the
detector detect.py builds (the shipped model by default), the whole frame alone and then with each tile size.
A face is found when a box overlaps it at IoU 0.5; the box's class is checked too. Cost: median wall and CPU
milliseconds per frame, on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import cpu_flags, cpu_name, timed, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402
from maskdet.evaluation.small_faces import SceneCounts, build_scenes, labelled_faces  # noqa: E402
from maskdet.evaluation.validate import checked_split  # noqa: E402
from maskdet.models import default_weights  # noqa: E402
from maskdet.pipeline.step import load_base_detector, with_views  # noqa: E402
from maskdet.settings import TILE_RANGE, DetectionSettings, Settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True, help="the dataset (YOLO data.yaml) whose faces fill the scenes")
    parser.add_argument("--split", default="test", choices=["val", "test"], help="never train: the model saw those")
    parser.add_argument("--weights", default=None, help="the detector (default: the shipped one, as detect.py)")
    parser.add_argument("--face-px", type=number(int, 8, 64), default=22, help="the height every face is shrunk to")
    parser.add_argument("--min-px", type=number(int, 8, 512), default=30,
                        help="faces smaller than this in their photo are left out (they would be shrunk too little)")
    parser.add_argument("--tile", type=number(int, *TILE_RANGE), nargs="+", default=[480], help="tile sizes to measure")
    parser.add_argument("--conf", type=number(float, 0, 1, low_open=True, high_open=True), default=DetectionSettings.conf,
                        help="detect.py's --conf")
    parser.add_argument("--json", default=None, help="also write the figures here")
    return measure(parser.parse_args(argv))


def measure(args: argparse.Namespace) -> int:
    if args.min_px <= args.face_px:
        raise UserError(f"--min-px ({args.min_px}) must be above --face-px ({args.face_px}): faces are only shrunk")
    started = time.time()
    checked_split(args.data, args.split)
    faces = labelled_faces(args.data, args.split, args.min_px)
    if not faces:
        raise UserError(f"no face of the {args.split} split is {args.min_px} px high or more: lower --min-px", args.data)
    scenes = build_scenes(faces, args.face_px)
    weights = Path(args.weights) if args.weights else default_weights()
    out: dict = {"weights": str(weights), "cpu": f"{cpu_name()} ({cpu_flags()})", "split": args.split, "face_px": args.face_px, "faces": sum(len(s.boxes) for s in scenes),
                 "frames": len(scenes), "results": {}}
    print(f"{out['faces']} faces of the {args.split} split, {args.face_px} px high, on {len(scenes)} 1920x1080 frames; {weights}")
    print(f"{'':<12}{'found':>8}{'recall':>8}{'class right':>13}{'twice':>7}{'extra':>7}{'ms/frame wall':>15}{'CPU':>8}")
    model = load_base_detector(Settings(detection=DetectionSettings(weights=weights, conf=args.conf)))
    for tile in [0, *args.tile]:
        detector = with_views(model, DetectionSettings(weights=weights, conf=args.conf, tile=tile))  # as detect.py --tile
        counts, wall, cpu = SceneCounts(), [], []
        for scene in scenes:
            det, wall_ms, cpu_ms = timed(detector, scene.image)
            wall.append(wall_ms)
            cpu.append(cpu_ms)
            counts.add(scene.boxes, scene.classes, det.xyxy, det.class_id)
        key = f"tile {tile}" if tile else "whole frame"
        out["results"][key] = {"found": counts.found, "recall": round(counts.recall, 4), "right_class": counts.right_class,
                               "twice": counts.twice, "extra": counts.extra,
                               "ms_per_frame": {"wall": round(statistics.median(wall), 1), "cpu": round(statistics.median(cpu), 1)}}
        r = out["results"][key]
        print(f"{key:<12}{counts.found:>8}{counts.recall:>8.1%}{counts.right_class:>13}{counts.twice:>7}{counts.extra:>7}"
              f"{r['ms_per_frame']['wall']:>15.1f}{r['ms_per_frame']['cpu']:>8.1f}")
    print(f"found: a box at IoU 0.5; class right: that box's class is the face's; twice: faces with two boxes; "
          f"extra: boxes on no face; {out['cpu']}; {time.time() - started:.0f} s")
    if args.json:
        write_json(args.json, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
