"""python train_second_stage.py: the second stage, a classifier of face crops, trained, exported and weighed."""

from __future__ import annotations

import json
import time
from pathlib import Path

from maskdet.cli import IMGSZ, POSITIVE_INT, add_data_arg, make_parser, number, run_name
from maskdet.config import PROJECT_ROOT
from maskdet.errors import UserError, require_modules
from maskdet.models import SECOND_STAGE

EXAMPLES = """examples:
  python train_second_stage.py --data data/kaggle-ilc/data.yaml            # crops, train, export, weigh on val
  python train_second_stage.py --data data.yaml --epochs 30 --imgsz 128 --force
  python train_second_stage.py --data data.yaml --weigh-only --out models/second_stage.onnx   # only choose the weight

What it does, in order:
  1. cuts every labelled face of the dataset's splits into runs/second_stage/<name>/crops/<split>/<class>/
     (the square around the box plus --margin, --imgsz pixels; the rare classes' train crops repeated);
  2. trains Ultralytics' yolo11n-cls on them, the detector's backbone (--backbone) transferred;
  3. exports it to ONNX (--out), which the light install runs without torch;
  4. runs the detector (--weights) on val, mixes the classifier in at weights 0, 0.1 ... 1, and keeps the
     weight with the best mAP50 of the whole step in second_stage.json beside the model (0 = the detector
     alone: then the stage changes nothing, and the figures say why).
detect.py, serve.py, prelabel.py and monitor.py use models/second_stage.onnx by themselves when it exists;
--second-stage off compares.
"""


def main(argv: list[str] | None = None) -> int:
    p = make_parser("train_second_stage.py", "Train the second stage: a small classifier of face crops whose opinion is\n"
                    "mixed into the detector's class of each box, with the weight chosen on val.", EXAMPLES)
    add_data_arg(p)
    p.add_argument("--backbone", default=str(PROJECT_ROOT / "models" / "best.pt"),
                   help="the detector checkpoint whose backbone (first 10 layers) the classifier starts from")
    p.add_argument("--weights", default=None, help="the detector the weight is chosen with (default: the shipped one)")
    p.add_argument("--epochs", type=number(int, 1, 10_000), default=15, help="training epochs")
    p.add_argument("--imgsz", type=IMGSZ, default=96, help="crop size in pixels")
    p.add_argument("--margin", type=number(float, 0, 1), default=0.15, help="context around the box, as a share of its longer side")
    p.add_argument("--batch", type=POSITIVE_INT, default=64, help="batch size")
    p.add_argument("--balance", type=number(float, 0, 1), default=0.5,
                   help="repeat each class's train crops (largest class / this class) ** BALANCE times (0 = off)")
    p.add_argument("--name", type=run_name, default="train", help="run folder under runs/second_stage/")
    p.add_argument("--out", default=str(SECOND_STAGE), help="where the ONNX model goes (second_stage.json beside it)")
    p.add_argument("--weigh-only", action="store_true", help="only choose the weight of an existing --out on val")
    p.add_argument("--force", action="store_true", help="replace the crops folder and --out if they exist")
    args = p.parse_args(argv)
    require_modules("train_second_stage.py", "ultralytics", "torch")

    from maskdet.evaluation.pipeline_map import predict_split
    from maskdet.evaluation.second_stage import choose_weight, crop_accuracy, detector_accuracy, weight_sweep, write_config
    from maskdet.evaluation.validate import checked_split
    from maskdet.inference.detectors import load_detector
    from maskdet.inference.second_stage import SecondStage, SecondStageConfig
    from maskdet.models import default_weights
    from maskdet.settings import DetectSettings
    from maskdet.training.second_stage import build_crops, export_classifier, train_classifier
    from maskdet.training.trainer import refuse_other_classes

    started = time.time()
    run = PROJECT_ROOT / "runs" / "second_stage" / args.name
    out = Path(args.out)
    config = SecondStageConfig(0.0, args.margin, args.imgsz)
    # Refused before crops are cut and a classifier trained: the weight is chosen on val, and the classifier learns
    # data.yaml's classes to stand in for the detector's, so both must be the same classes.
    dataset = checked_split(args.data, "val")
    weights = Path(args.weights) if args.weights else default_weights()
    detector = load_detector(weights, DetectSettings(conf=0.001, iou=0.7, max_det=300))
    refuse_other_classes(detector.names, dataset.names, weights)
    if not args.weigh_only:
        if out.exists() and not args.force:
            raise UserError("already exists (pass --force to replace it, or --out elsewhere)", out)
        print(f"cutting face crops from {args.data} into {run / 'crops'}", flush=True)
        found = build_crops(args.data, run / "crops", args.margin, args.imgsz, balance=args.balance, force=args.force)
        for split, counts in found.items():
            if split != "skipped":
                print(f"  {split}: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
        if found.get("skipped"):
            print(f"  skipped {len(found['skipped'])} unreadable photos", flush=True)
        best = train_classifier(run / "crops", args.backbone, args.epochs, args.imgsz, args.batch, run.parent, args.name)
        write_config(out, 0.0, config)  # the crop geometry first: the model is never without it
        export_classifier(best, out, args.imgsz)
        print(f"exported {out}")
    elif not out.is_file():
        raise UserError("no such second-stage model", out)

    stage = SecondStage(out, detector.names, weight=1.0)
    crops = run / "crops" / "val"
    report: dict = {"detector": str(weights)}
    if crops.is_dir():
        report["crop_accuracy_val"] = crop_accuracy(stage, crops, detector.names)
        print(f"classifier alone on val crops: {report['crop_accuracy_val']['accuracy']:.3f} top-1 "
              f"({report['crop_accuracy_val']['per_class']})")
    print(f"running {weights.name} on val to choose the weight", flush=True)
    predictions = predict_split(args.data, "val", detector)
    report["detector_accuracy_val"] = detector_accuracy(predictions, detector.names)
    sweep = weight_sweep(predictions, detector.names, out)
    report["sweep_val"] = {str(w): v for w, v in sweep.items()}
    print(f"{'weight':>6} {'mAP50':>6} {'mAP50-95':>8}  AP50 per class")
    for w, v in sweep.items():
        print(f"{w:6.1f} {v['mAP50']:6.3f} {v['mAP50-95']:8.3f}  " + " / ".join(f"{a:.3f}" for a in v["AP50"].values()))
    chosen = choose_weight(sweep)
    report["weight"] = chosen
    write_config(out, chosen, config, {"chosen_on": "val mAP50 of the whole step", "val": sweep[chosen]})
    (run / "second_stage_report.json").parent.mkdir(parents=True, exist_ok=True)
    (run / "second_stage_report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"\nweight {chosen} ({'the detector alone: the classifier did not pay on val' if chosen == 0 else 'mixed in'}); "
          f"{out.with_name('second_stage.json')}; report {run / 'second_stage_report.json'}; {time.time() - started:.0f} s")
    return 0
