"""python export.py: export a .pt checkpoint to ONNX for ONNX Runtime."""

from __future__ import annotations

from maskdet.cli import IMGSZ, make_parser, number
from maskdet.cli.val import DEFAULT_WEIGHTS
from maskdet.config import INFERENCE_IMGSZ

EXAMPLES = """examples:
  python export.py                                          # models/best.pt -> models/best.onnx
  python export.py --weights runs/train/exp/weights/best.pt --imgsz 768
  python export.py --force                                  # replace models/best.onnx
  python export.py --weights yolo26_best.pt --end2end       # YOLO26: NMS-free output (1, 300, 6)
  python detect.py --weights models/best.onnx --source 0   # then run it with ONNX Runtime
"""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("export.py", "Export weights to ONNX (written beside the .pt) for fast CPU inference.", EXAMPLES)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help=".pt checkpoint to export")
    parser.add_argument("--imgsz", "--img", dest="imgsz", type=IMGSZ, default=INFERENCE_IMGSZ, help="input size baked into the model")
    parser.add_argument("--opset", type=number(int, 7, 30), default=None, help="ONNX opset (default: Ultralytics' choice)")
    parser.add_argument("--dynamic", action="store_true", help="dynamic input size and batch")
    parser.add_argument("--no-simplify", action="store_true", help="skip onnxslim graph simplification")
    parser.add_argument("--half", action="store_true", help="FP16 weights (GPU only)")
    parser.add_argument("--force", action="store_true", help="replace an existing .onnx beside the .pt")
    parser.add_argument("--end2end", action="store_true",
                        help="YOLO26 only: export the NMS-free head, one (1, 300, 6) output of finished boxes "
                             "(x1 y1 x2 y2 score class); default: the classic (1, 4 + classes, anchors) output, "
                             "NMS run by detect.py. detect.py and val.py read both")
    args = parser.parse_args(argv)

    from maskdet.training.export import export_onnx


    path = export_onnx(args.weights, args.imgsz, args.opset, args.dynamic, not args.no_simplify, args.half,
                       args.force, args.end2end)
    kind = "end-to-end, NMS-free" if args.end2end else "classic output, NMS in detect.py"
    print(f"\nexported {path} ({path.stat().st_size / 1e6:.1f} MB, {kind}); use it with: python detect.py --weights {path}")
    return 0
