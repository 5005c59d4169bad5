"""python val.py: evaluate any weights on any split of data.yaml."""

from __future__ import annotations

from pathlib import Path

from maskdet.cli import CONFIDENCE, IMGSZ, IOU, add_data_arg, make_parser, number, run_name
from maskdet.config import INFERENCE_IMGSZ, MAP_CONF, MAP_IOU, MAX_STRIDE, PROJECT_ROOT

DEFAULT_WEIGHTS = PROJECT_ROOT / "models" / "best.pt"
EXAMPLES = """examples:
  python val.py --split test                        # the shipped model on the test split
  python val.py --weights runs/train/exp/weights/best.pt --split val
  python val.py --weights models/best.onnx --split test
  python val.py --weights models/best_int8_openvino_model --augment   # detect.py --augment's accuracy
  python val.py --weights yolo26_best.pt --end2end    # YOLO26's NMS-free head, as export.py --end2end runs it

how sure a figure on a small split is, and whether one model beats another there (bootstrap over photos):
  python bench/compare_models.py models/best_int8_openvino_model runs/train/exp/weights/best.onnx --data data.yaml
"""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("val.py", "Evaluate weights on a split: precision, recall, mAP50 and mAP50-95 overall and per\n"
                         "class; writes the confusion matrix and PR curves to runs/val/expN.", EXAMPLES)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS),
                        help="the model: a .pt checkpoint, an .onnx, or an OpenVINO export's folder (INT8 or not)")
    add_data_arg(parser)
    parser.add_argument("--split", "--task", dest="split", default="val", choices=["train", "val", "test"], help="which split")
    parser.add_argument("--imgsz", "--img", dest="imgsz", type=IMGSZ, default=None,
                        help=f"inference size in pixels (default: the model's own, as detect.py runs it: an .onnx or "
                             f"OpenVINO export's, {INFERENCE_IMGSZ} for a .pt, the shipped model's size chosen on val)")
    parser.add_argument("--batch", "--batch-size", dest="batch", type=number(int, 1, 4096), default=16, help="batch size")
    parser.add_argument("--conf", "--conf-thres", dest="conf", type=CONFIDENCE, default=MAP_CONF,
                        help="confidence threshold (low, as mAP integrates over all confidences)")
    parser.add_argument("--iou", "--iou-thres", dest="iou", type=IOU, default=MAP_IOU, help="NMS IoU threshold")
    parser.add_argument("--device", default=None, help="'cpu' or a CUDA device such as '0'")
    parser.add_argument("--project", default=str(PROJECT_ROOT / "runs" / "val"), help="where run folders go")
    parser.add_argument("--name", type=run_name, default="exp", help="run folder name")
    parser.add_argument("--exist-ok", action="store_true", help="reuse the run folder")
    parser.add_argument("--no-plots", action="store_true", help="skip confusion matrix and curves")
    parser.add_argument("--end2end", action="store_true",
                        help="YOLO26 .pt only: evaluate its NMS-free head (what an end-to-end export runs) instead of "
                             "the classic head + NMS; an .onnx is always evaluated as it was exported")
    parser.add_argument("--augment", action="store_true",
                        help="evaluate test-time augmentation as detect.py --augment runs it (the mirror image too, "
                             "boxes fused), scored as Ultralytics scores a model; no plots")
    args = parser.parse_args(argv)

    from maskdet.errors import printable
    from maskdet.evaluation.metrics import format_table
    from maskdet.evaluation.validate import evaluate

    if args.device not in (None, "", "cpu"):
        from maskdet.inference.detectors import check_torch_device

        check_torch_device(args.device)

    if args.imgsz and args.imgsz % MAX_STRIDE:  # Ultralytics would round it up with a warning, and the table would name the wrong size
        rounded = -(-args.imgsz // MAX_STRIDE) * MAX_STRIDE
        print(f"note: --imgsz {args.imgsz} is not a multiple of {MAX_STRIDE} (the model's largest stride): evaluated at {rounded}")
        args.imgsz = rounded
    if args.augment:
        if args.end2end:
            parser.error("--augment and --end2end: choose one")
        from maskdet.evaluation.validate import evaluate_augmented

        result = evaluate_augmented(args.weights, args.data, split=args.split, imgsz=args.imgsz, device=args.device,
                                    conf=args.conf, iou=args.iou, project=Path(args.project), name=args.name,
                                    exist_ok=args.exist_ok)
    else:
        result = evaluate(args.weights, args.data, split=args.split, imgsz=args.imgsz, batch=args.batch, device=args.device,
                      conf=args.conf, iou=args.iou, project=Path(args.project), name=args.name,
                      exist_ok=args.exist_ok, plots=not args.no_plots, end2end=args.end2end)
    print(f"\n{Path(args.weights).name}{' --augment' if args.augment else ''} on the {args.split} split (imgsz {result.imgsz}):")
    print(format_table(result.table))
    if result.left_out:
        example = f", e.g. {printable(str(result.left_out_photos[0]))}" if result.left_out_photos else ""
        print(f"note: {result.left_out} photo{'s' * (result.left_out > 1)} of the {args.split} split left out{example}: "
              f"Ultralytics could not use {'their' if result.left_out > 1 else 'its'} image or a line of "
              f"{'their' if result.left_out > 1 else 'its'} label, and measured without "
              f"{'them' if result.left_out > 1 else 'it'}; python labeling/check.py --data {args.data} names each and why")
    speed = ", ".join(f"{k} {v:.1f} ms" for k, v in result.speed_ms.items())
    made = "metrics.csv" if args.augment or args.no_plots else "metrics.csv, confusion matrix, PR curves"
    print(f"\nspeed per image: {speed}\nresults ({made}): {result.save_dir}")
    return 0
