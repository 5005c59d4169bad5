"""python export.py: export a .pt checkpoint to ONNX for ONNX Runtime, or to INT8 (OpenVINO or ONNX)."""

from __future__ import annotations

from maskdet.cli import add_data_arg, make_parser, number
from maskdet.cli.val import DEFAULT_WEIGHTS
from maskdet.config import INFERENCE_IMGSZ, MAX_STRIDE
from maskdet.errors import UserError
from maskdet.training.export import INT8_FORMATS, export_int8, export_onnx

EXAMPLES = """examples:
  python export.py                                          # models/best.pt -> models/best.onnx
  python export.py --weights runs/train/exp/weights/best.pt --imgsz 768
  python export.py --force                                  # replace models/best.onnx
  python export.py --weights yolo26_best.pt --end2end       # YOLO26: NMS-free output (1, 300, 6)
  python detect.py --weights models/best.onnx --source 0   # then run it with ONNX Runtime
  python export.py --int8 --data data.yaml --fraction 0.5  # -> models/best_int8_openvino_model/ (OpenVINO + NNCF),
                                                            #    calibrated on the first half of the train split
  python export.py --int8 --format onnx --data data.yaml   # -> models/best_int8.onnx (ONNX Runtime QDQ)
"""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("export.py", "Export weights to ONNX (written beside the .pt) for fast CPU inference.", EXAMPLES)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help=".pt checkpoint to export")
    parser.add_argument("--imgsz", "--img", dest="imgsz", type=number(int, 32, 4096), default=INFERENCE_IMGSZ, help="input size baked into the model")
    parser.add_argument("--opset", type=number(int, 7, 30), default=None, help="ONNX opset (default: Ultralytics' choice)")
    parser.add_argument("--dynamic", action="store_true", help="dynamic input size and batch")
    parser.add_argument("--no-simplify", action="store_true", help="skip onnxslim graph simplification")
    parser.add_argument("--half", action="store_true", help="FP16 weights: half the file; ONNX Runtime runs them on a CPU too, but a GPU is where they are faster")
    parser.add_argument("--force", action="store_true", help="replace an existing .onnx beside the .pt")
    parser.add_argument("--end2end", action="store_true",
                        help="YOLO26 only: export the NMS-free head, one (1, 300, 6) output of finished boxes "
                             "(x1 y1 x2 y2 score class); default: the classic (1, 4 + classes, anchors) output, "
                             "NMS run by detect.py. detect.py and val.py read both")
    parser.add_argument("--int8", action="store_true",
                        help="post-training INT8 quantization, calibrated on --fraction of --data's train photos")
    parser.add_argument("--format", default=None, choices=INT8_FORMATS,
                        help="with --int8: openvino (an _int8_openvino_model/ folder, needs pip install openvino nncf; "
                             "the faster; the default) or onnx (an _int8.onnx for ONNX Runtime)")
    add_data_arg(parser)
    parser.add_argument("--fraction", type=number(float, 0, 1, low_open=True), default=0.5,
                        help="with --int8: the share of the train split's photos to calibrate on, in (0, 1] "
                             "(the first ones in name order; 0.5 = 298 Kaggle photos)")
    args = parser.parse_args(argv)
    if args.format is not None and not args.int8:  # it would be ignored: the fp32 export is always an .onnx
        parser.error(f"--format {args.format} chooses the INT8 model's form: add --int8 (without it, export.py writes "
                     "the fp32 .onnx)")
    args.format = args.format or "openvino"
    if args.imgsz % MAX_STRIDE:  # Ultralytics would round it up without a word, and the model would not be the size asked
        rounded = -(-args.imgsz // MAX_STRIDE) * MAX_STRIDE
        print(f"note: --imgsz {args.imgsz} is not a multiple of {MAX_STRIDE} (the model's largest stride): exported at {rounded}")
        args.imgsz = rounded

    if args.int8:
        if args.format == "openvino":
            try:
                import nncf  # noqa: F401
                import openvino  # noqa: F401
            except ImportError:
                raise UserError("--int8 --format openvino needs openvino and nncf: pip install -r requirements-train.txt "
                                "(or use --format onnx)") from None
        path, photos = export_int8(args.weights, args.data, args.imgsz, args.fraction, "train", args.format, args.force)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
        print(f"\nexported {path} ({size / 1e6:.1f} MB, INT8, calibrated on {photos} train photos); "
              f"use it with: python detect.py --weights {path}")
        return 0

    path = export_onnx(args.weights, args.imgsz, args.opset, args.dynamic, not args.no_simplify, args.half,
                       args.force, args.end2end)
    kind = "end-to-end, NMS-free" if args.end2end else "classic output, NMS in detect.py"
    print(f"\nexported {path} ({path.stat().st_size / 1e6:.1f} MB, {kind}); use it with: python detect.py --weights {path}")
    return 0
