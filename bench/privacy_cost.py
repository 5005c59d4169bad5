#!/usr/bin/env python3
"""What --privacy blur costs per frame next to inference, and what it cannot promise: the faces it misses.

On the Kaggle test split (real photos, real face sizes), the shipped model at its own size: for each photo,
the detector (preprocess + inference + NMS) and blur_faces on what it found, each timed alone; medians of
wall and CPU time (CPU counts every thread of the process, ONNX Runtime's included). The blur's share is
blur / (detector + blur). Then the faces left unblurred: a labelled face counts as blurred when the
enlarged boxes cover at least 90 % of it.

    python bench/privacy_cost.py                      # ../shared/datasets/kaggle-facemask, models/best.onnx
    python bench/privacy_cost.py --json bench/privacy_cost.json
"""

from __future__ import annotations

import platform
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import add_kaggle_arg, kaggle_split, read_photo, timed, write_json  # noqa: E402

from maskdet.cli import CONFIDENCE, ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.data.voc import parse_voc  # noqa: E402
from maskdet.errors import run_cli  # noqa: E402
from maskdet.inference.detectors import DetectSettings, load_detector  # noqa: E402
from maskdet.privacy.blur import MARGIN, blur_faces, enlarged  # noqa: E402


def covered(face: tuple[float, float, float, float], mask: np.ndarray) -> float:
    x1, y1, x2, y2 = (int(round(v)) for v in face)
    region = mask[max(0, y1):max(0, y2), max(0, x1):max(0, x2)]
    return float(region.mean()) if region.size else 1.0


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_kaggle_arg(p, "its test photos (images/, annotations/, splits/test.txt: the project's fixed split)")
    p.add_argument("--weights", default=str(ROOT / "models" / "best.onnx"), help="the detector (.onnx, OpenVINO, .pt)")
    p.add_argument("--conf", type=CONFIDENCE, default=0.25, help="the detection (and so blur) threshold")
    p.add_argument("--margin", type=number(float, 0, 1), default=MARGIN,
                   help="blur this share of a face box's size beyond it on each side")
    p.add_argument("--repeat", type=number(int, 1, 100), default=3, help="timed passes over the photos (medians over all)")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    data = Path(args.kaggle)
    stems = kaggle_split(data, "test", "--kaggle")  # before the model loads
    detector = load_detector(args.weights, DetectSettings(conf=args.conf))
    photos = [(read_photo(data / "images" / f"{s}.png"), parse_voc(data / "annotations" / f"{s}.xml")) for s in stems]
    det_wall, det_cpu, blur_wall, blur_cpu = [], [], [], []
    faces = missed = 0
    for r in range(args.repeat):
        for image, voc in photos:
            det, wall, cpu = timed(detector, image)
            det_wall.append(wall)
            det_cpu.append(cpu)
            _, wall, cpu = timed(blur_faces, image.copy(), det.xyxy, args.margin)
            blur_wall.append(wall)
            blur_cpu.append(cpu)
            if r == 0:
                h, w = image.shape[:2]
                mask = np.zeros((h, w), np.float32)
                for x1, y1, x2, y2 in enlarged(det.xyxy, args.margin, w, h):
                    mask[y1:y2, x1:x2] = 1
                for obj in voc.objects:
                    faces += 1
                    missed += covered((obj.xmin, obj.ymin, obj.xmax, obj.ymax), mask) < 0.9
    med = statistics.median
    figures = {"photos": len(photos), "repeat": args.repeat, "conf": args.conf, "margin": args.margin,
               "detector_ms": {"wall": med(det_wall), "cpu": med(det_cpu)},
               "blur_ms": {"wall": med(blur_wall), "cpu": med(blur_cpu)},
               "blur_share_wall": med(blur_wall) / (med(det_wall) + med(blur_wall)),
               "blur_share_cpu": med(blur_cpu) / (med(det_cpu) + med(blur_cpu)),
               "blur_ms_p95_wall": float(np.percentile(blur_wall, 95)),
               "faces": faces, "faces_not_blurred": missed, "cpu": platform.processor() or platform.machine()}
    print(f"{len(photos)} Kaggle test photos x {args.repeat}, {Path(args.weights).name}, conf {args.conf}, margin {args.margin}")
    print(f"detector: median {figures['detector_ms']['wall']:.1f} ms wall, {figures['detector_ms']['cpu']:.1f} ms CPU per photo")
    print(f"blur:     median {figures['blur_ms']['wall']:.2f} ms wall, {figures['blur_ms']['cpu']:.2f} ms CPU per photo "
          f"(p95 {figures['blur_ms_p95_wall']:.2f} ms)")
    print(f"blur share of frame time: {figures['blur_share_wall']:.1%} wall, {figures['blur_share_cpu']:.1%} CPU (target < 5 %)")
    print(f"faces not blurred (labelled faces < 90 % covered): {missed} of {faces} ({missed / max(faces, 1):.1%})")
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
