"""python train.py: train a YOLO face-mask detector on data.yaml (CPU laptop or Colab GPU)."""

from __future__ import annotations

from pathlib import Path

from maskdet.cli import add_data_arg, make_parser
from maskdet.config import PROJECT_ROOT
from maskdet.training import DEFAULT_MODEL_YAML, format_table, parse_overrides, train

EXAMPLES = """examples:
  python train.py                                        # yolo11n from scratch, 100 epochs, imgsz 416
  python train.py --epochs 300 --imgsz 512 --cls-pw 0.5  # longer, larger, rare class weighted up
  python train.py --oversample 0.8                       # repeat images with rare classes each epoch
  python train.py --model models/best.pt --epochs 50     # fine-tune the shipped model on your data
  python train.py --model yolo11n.pt                     # COCO-pretrained start (downloads; needs internet)
  python train.py --resume                               # continue the latest interrupted run
  python train.py --epochs 50 mosaic=0.5 lr0=0.02        # any other Ultralytics train setting as key=value

Ctrl-C stops training; runs/train/<name>/weights/last.pt keeps the progress and --resume continues it.
"""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("train.py", "Train an Ultralytics YOLO detector on the dataset of data.yaml and print precision,\n"
                         "recall and mAP per class at the end.", EXAMPLES)
    add_data_arg(parser)
    parser.add_argument("--model", "--weights", "--cfg", dest="model", default=DEFAULT_MODEL_YAML,
                        help="architecture .yaml (from scratch) or .pt checkpoint to start from")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs")
    parser.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=int, default=416,
                        help="training image size in pixels (the Kaggle photos are ~400 px wide)")
    parser.add_argument("--batch", "--batch-size", dest="batch", type=float, default=16,
                        help="batch size; -1 = as large as GPU memory allows, 0.7 = 70%% of it")
    parser.add_argument("--device", default=None, help="'cpu', '0' or '0,1' (CUDA), 'mps'; default: the GPU if there is one")
    parser.add_argument("--workers", type=int, default=2, help="dataloader worker processes")
    parser.add_argument("--patience", type=int, default=50, help="stop after this many epochs without a better val mAP")
    parser.add_argument("--cache", nargs="?", const="ram", default=False, choices=["ram", "disk"],
                        help="cache decoded images in RAM or on disk (faster epochs)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--cls-pw", type=float, default=0.5,
                        help="weight classes by inverse frequency to this power (0 = off, 1 = full): helps the rare "
                             "mask_weared_incorrect class")
    parser.add_argument("--oversample", type=float, default=0.0, metavar="T",
                        help="repeat the train images that hold rare classes, each epoch (repeat-factor sampling: "
                             "a class on a fraction f of the images repeats its images round(sqrt(T/f)) times); "
                             "0.8 doubles the Kaggle images with unmasked faces and triples those with badly worn "
                             "masks; 0 = off")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="LAST_PT",
                        help="continue an interrupted run: the latest one, or the given last.pt")
    parser.add_argument("--project", default=str(PROJECT_ROOT / "runs" / "train"), help="where run folders go")
    parser.add_argument("--name", default="exp", help="run folder name (exp, exp2, ... if it exists)")
    parser.add_argument("--exist-ok", action="store_true", help="reuse the run folder instead of numbering a new one")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="any other Ultralytics training setting")
    args = parser.parse_args(argv)

    batch = int(args.batch) if args.batch >= 1 or args.batch == -1 else args.batch
    result = train(data=args.data, model=args.model, epochs=args.epochs, imgsz=args.imgsz, batch=batch,
                   device=args.device, workers=args.workers, patience=args.patience, cache=args.cache,
                   seed=args.seed, project=Path(args.project), name=args.name, exist_ok=args.exist_ok,
                   cls_pw=args.cls_pw, resume=args.resume, overrides=parse_overrides(args.overrides),
                   oversample=args.oversample)
    print(f"\nvalidation of {result.best.name} (the epoch with the best val mAP):")
    print(format_table(result.table))
    print(f"\nbest weights: {result.best}\nlast weights: {result.last} (for --resume)\n"
          f"plots and logs: {result.save_dir}\n"
          f"next: python val.py --weights {result.best} --split test")
    return 0
