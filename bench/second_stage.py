#!/usr/bin/env python3
"""The second stage against the detector alone, on one split: what the model card's second-stage table holds.

    python bench/second_stage.py --data data/kaggle-ilc/data.yaml --split val  --crops runs/second_stage/crops
    python bench/second_stage.py --data data/kaggle-ilc/data.yaml --split test --crops runs/second_stage/crops --json ss.json

* the classifier alone on the split's labelled face crops: top-1 and confusion matrix (the classic projects'
  figure, about 95 % on easier two-class data);
* the detector's own class on the faces it finds (conf 0.25, IoU 0.5), then the same boxes after the second
  stage at its chosen weight (second_stage.json): what the stage changes where people look;
* the step's mAP (conf 0.001, as val.py), off and on;
* its cost: per photo, the detector call and the second stage on the boxes kept at conf 0.25 (medians, wall
  and CPU time of this process).
Choose on val (train_second_stage.py does); run test once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import timed, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import run_cli  # noqa: E402
from maskdet.evaluation.pipeline_map import predict_split, score  # noqa: E402
from maskdet.evaluation.second_stage import crop_accuracy, detector_accuracy  # noqa: E402
from maskdet.inference.detectors import load_detector  # noqa: E402
from maskdet.inference.second_stage import SecondStage  # noqa: E402
from maskdet.models import SECOND_STAGE, default_weights  # noqa: E402
from maskdet.settings import DetectSettings  # noqa: E402


def cost(detector, stage: SecondStage, predictions) -> dict:
    """Median wall and CPU ms per photo of the detector call and of the second stage on its conf-0.25 boxes."""
    import statistics

    from maskdet.inference.detections import Detections, Frame

    rows = []
    for image in predictions.images:
        det, detector_wall, detector_cpu = timed(detector, image)
        keep = det.confidence >= 0.25
        det = Detections(det.xyxy[keep], det.confidence[keep], det.class_id[keep], det.names)
        _, stage_wall, stage_cpu = timed(stage, Frame(image, "", "", "image"), det)
        rows.append((detector_wall, detector_cpu, stage_wall, stage_cpu, len(det)))
    med = [statistics.median(col) for col in zip(*rows)]
    return {"detector_wall": med[0], "detector_cpu": med[1], "stage_wall": med[2], "stage_cpu": med[3], "boxes": med[4]}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True, help="the dataset (YOLO data.yaml)")
    parser.add_argument("--split", default="val", choices=["val", "test"], help="choose on val, report test once")
    parser.add_argument("--weights", default=None, help="the detector (default: the shipped one)")
    parser.add_argument("--model", default=str(SECOND_STAGE), help="the second stage (.onnx with second_stage.json)")
    parser.add_argument("--weight", type=number(float, 0, 1), default=None, help="mix at this weight instead of second_stage.json's")
    parser.add_argument("--crops", default=None, help="train_second_stage.py's crops folder (for the classifier-alone figures)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    started = time.time()
    weights = Path(args.weights) if args.weights else default_weights()
    detector = load_detector(weights, DetectSettings(conf=0.001, iou=0.7, max_det=300))
    stage = SecondStage(Path(args.model), detector.names, weight=args.weight)
    out: dict = {"detector": str(weights), "model": args.model, "split": args.split, "weight": stage.config.weight}
    if args.crops:
        out["classifier_alone"] = crop_accuracy(stage, Path(args.crops) / args.split, detector.names)
    predictions = predict_split(args.data, args.split, detector)
    out["detector_classes"] = detector_accuracy(predictions, detector.names)
    out["with_second_stage_classes"] = detector_accuracy(predictions, detector.names, stage=stage)
    out["map_off"] = score(predictions, detector.names).as_dict()
    out["map_on"] = score(predictions, detector.names, stage).as_dict()
    out["cost_ms"] = cost(detector, stage, predictions)
    for key in ("classifier_alone", "detector_classes", "with_second_stage_classes"):
        if key in out:
            print(f"{key:<26} top-1 {out[key]['accuracy']:.3f} on {out[key]['crops']} faces  {out[key]['per_class']}")
            print(f"{'':<26} confusion (rows truth, columns predicted): {out[key]['confusion']['matrix']}")
    for key in ("map_off", "map_on"):
        print(f"{key:<26} mAP50 {out[key]['mAP50']:.3f}  mAP50-95 {out[key]['mAP50-95']:.3f}  AP50 {out[key]['AP50']}")
    c = out["cost_ms"]
    print(f"cost per photo (medians): detector {c['detector_wall']:.1f} ms wall / {c['detector_cpu']:.1f} ms CPU; second stage "
          f"{c['stage_wall']:.2f} ms wall / {c['stage_cpu']:.2f} ms CPU for {c['boxes']:.0f} boxes "
          f"({100 * c['stage_cpu'] / c['detector_cpu']:.1f} % of the detector's CPU)")
    print(f"{args.split}, weight {stage.config.weight}, {time.time() - started:.0f} s")
    if args.json:
        write_json(args.json, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
