"""python train.py: train a YOLO face-mask detector on data.yaml (CPU laptop or Colab GPU)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from maskdet.cli import IMGSZ, POSITIVE_INT, SEED, add_data_arg, make_parser, number, run_name
from maskdet.config import PROJECT_ROOT
from maskdet.errors import UserError

EXAMPLES = """examples:
  python train.py                                        # fine-tune the shipped model on your photos, 640 px
  python train.py --model yolo11n.pt                     # COCO-pretrained start (downloads; needs internet)
  python train.py --model ../shared/weights/yolo11n-coco.pt   # the same COCO start from a local file
  python train.py --model yolo26n.pt                     # YOLO26n from COCO (NMS-free head)
  python train.py --model yolo11n.yaml --epochs 300      # from scratch (no pretrained weights at all)
  python train.py --epochs 300 --cls-pw 0.5              # longer, rare class weighted up
  python train.py --oversample 0.8                       # repeat images with rare classes each epoch
  python train.py --p2                                   # add a stride-4 output for tiny faces, then train
  python train.py --resume                               # continue the latest interrupted run
  python train.py --epochs 50 mosaic=0.5 lr0=0.02        # any other Ultralytics train setting as key=value

Which start: your photos show the same three classes -> leave out --model (the shipped model already
knows faces and masks); other classes or a new kind of scene -> a COCO checkpoint (yolo11n.pt, or
yolo26n.pt); from scratch (.yaml) only to compare architectures, it needs many more epochs.
Starting from a checkpoint (.pt), train.py fine-tunes: optimizer=AdamW lr0=0.001 warmup_epochs=1 and
close_mosaic=min(10, max(1, epochs // 6)), unless you give any of them as key=value.

Ctrl-C stops training; runs/train/<name>/weights/last.pt keeps the progress and --resume continues it.
"""


# Settings train.py takes as flags: given as key=value too, they would skip the flags' range checks and
# silently override them (imgsz=0 trained at 32 px).
FLAG_OF_SETTING = {"data": "--data", "model": "--model", "epochs": "--epochs", "imgsz": "--imgsz", "batch": "--batch",
                   "device": "--device", "workers": "--workers", "patience": "--patience", "cache": "--cache",
                   "seed": "--seed", "cls_pw": "--cls-pw", "resume": "--resume", "project": "--project",
                   "name": "--name", "exist_ok": "--exist-ok"}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("train.py", "Train an Ultralytics YOLO detector on the dataset of data.yaml and print precision,\n"
                         "recall and mAP per class at the end.", EXAMPLES)
    add_data_arg(parser)
    parser.add_argument("--model", "--weights", "--cfg", dest="model", default=argparse.SUPPRESS,
                        help="where training starts: a .pt checkpoint to fine-tune (default: the shipped model "
                             "models/best.pt; yolo11n.pt or yolo26n.pt: COCO-pretrained, downloaded) or an "
                             "architecture .yaml such as yolo11n.yaml (from scratch)")
    parser.add_argument("--epochs", type=number(int, 1, 100_000), default=100, help="training epochs")
    parser.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=IMGSZ, default=640,
                        help="training image size in pixels (the size the shipped model trains at; the Kaggle "
                             "photos are ~400 px wide, but their faces are small and are found better upscaled)")
    parser.add_argument("--batch", "--batch-size", dest="batch", type=number(float, 0, 4096, low_open=True, also=(-1,)), default=16,
                        help="batch size; -1 = as large as GPU memory allows, 0.7 = 70%% of it")
    parser.add_argument("--device", default=None, help="'cpu', '0' or '0,1' (CUDA), 'mps'; default: the GPU if there is one")
    parser.add_argument("--workers", type=number(int, 0, 256), default=2, help="dataloader worker processes")
    parser.add_argument("--patience", type=POSITIVE_INT, default=50, help="stop after this many epochs without a better val mAP")
    parser.add_argument("--cache", nargs="?", const="ram", default=False, choices=["ram", "disk"],
                        help="cache decoded images in RAM or on disk (faster epochs; disk writes a .npy beside each "
                             "photo in the dataset's folders, several times its size). Training also leaves Ultralytics' "
                             "labels.cache beside each split's labels/ folder, as it always does")
    parser.add_argument("--seed", type=SEED, default=0, help="random seed")
    parser.add_argument("--cls-pw", type=number(float, 0, 1), default=0.5,
                        help="weight classes by inverse frequency to this power (0 = off, 1 = full): helps the rare "
                             "mask_weared_incorrect class")
    # At most 100: the list then holds at most n * sqrt(100 * classes) lines (a class on k of n photos repeats them
    # sqrt(T n / k) times); 1e20 built a list of billions.
    parser.add_argument("--oversample", type=number(float, 0, 100), default=0.0, metavar="T",
                        help="repeat the train images that hold rare classes, each epoch (repeat-factor sampling: "
                             "a class on a fraction f of the images repeats its images round(sqrt(T/f)) times); "
                             "0.8 doubles the Kaggle images with unmasked faces and triples those with badly worn "
                             "masks; 0 = off, at most 100")
    parser.add_argument("--camera-aug", type=number(float, 0, 1), default=0.0, metavar="P",
                        help="make training photos look like camera frames: blur, JPEG compression, exposure, "
                             "downscaling and colour cast, each with probability P (0.15 is a good start; 0 = off)")
    parser.add_argument("--p2", action="store_true",
                        help="add a stride-4 (P2) output for the smallest faces to the start checkpoint before "
                             "training: its P3-P5 outputs and every weight are kept, the new one starts silent and "
                             "learns; about 1.9x the compute a frame (models/README.md says what it bought)")
    parser.add_argument("--average", nargs=2, default=None, metavar=("A_PT", "B_PT"),
                        help="train nothing: average the weights of two fine-tunes of one model ((1 - alpha) A + alpha "
                             "B, a 'model soup') into <project>/<name>/weights/best.pt")
    parser.add_argument("--alpha", type=number(float, 0, 1), default=0.5, help="--average: the share of B")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="LAST_PT",
                        help="continue an interrupted run, the latest one or the given last.pt, with the settings it "
                             "started with (other flags are refused; --device and --camera-aug are taken)")
    parser.add_argument("--project", default=str(PROJECT_ROOT / "runs" / "train"), help="where run folders go")
    parser.add_argument("--name", type=run_name, default="exp", help="run folder name (exp, exp2, ... if it exists)")
    parser.add_argument("--exist-ok", action="store_true", help="reuse the run folder instead of numbering a new one")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="any other Ultralytics training setting (those with a flag above are given by the flag, "
                             "where they are range-checked)")
    args = parser.parse_args(argv)
    if args.batch > 1 and args.batch != int(args.batch):
        parser.error(f"argument --batch/--batch-size: a batch of images is a whole number (or a fraction below 1 "
                     f"of GPU memory, or -1), got {args.batch:g}")

    if args.average:
        ignored = settings_given_beyond(parser, argv, args, AVERAGE_TAKES)
        if ignored:
            parser.error(f"--average trains nothing, so {', '.join(ignored)} would be ignored: leave "
                         f"{'it' if len(ignored) == 1 else 'them'} out (it takes --alpha, --project, --name, --exist-ok)")
        return average(args)
    if args.resume:
        refuse_settings_resume_ignores(parser, argv, args)

    from maskdet.evaluation.metrics import format_table
    from maskdet.training.trainer import parse_overrides, train

    overrides = parse_overrides(args.overrides)
    for key in overrides:
        if key in FLAG_OF_SETTING:
            parser.error(f"'{key}=' has a flag of its own: give it as {FLAG_OF_SETTING[key]}, where it is range-checked")
    if args.device not in (None, "", "cpu"):
        from maskdet.inference.detectors import check_torch_device

        check_torch_device(args.device)
    batch = int(args.batch) if args.batch >= 1 or args.batch == -1 else args.batch
    result = train(data=args.data, model=getattr(args, "model", None), epochs=args.epochs, imgsz=args.imgsz, batch=batch,
                   device=args.device, workers=args.workers, patience=args.patience, cache=args.cache,
                   seed=args.seed, project=Path(args.project), name=args.name, exist_ok=args.exist_ok,
                   cls_pw=args.cls_pw, resume=args.resume, overrides=overrides,
                   oversample=args.oversample, camera_aug=args.camera_aug, stride4=args.p2)
    data_yaml = result.data if args.resume or result.data is None else args.data  # a resumed run's is in its folder
    print(f"\nvalidation of {result.best.name} (the epoch with the best val mAP):")
    print(format_table(result.table))
    print(f"\nbest weights: {result.best}\nlast weights: {result.last} (for --resume)\n"
          f"plots and logs: {result.save_dir}\n"
          f"next: compare runs on val, then look at test once, for the one you keep:\n"
          f"  python val.py --weights {shlex.quote(str(result.best))} --data {shlex.quote(str(data_yaml))}"
          f" --split test --imgsz {result.imgsz or args.imgsz}")
    for line in result.warnings:  # photos Ultralytics left out of training (bad label lines were said at the start too)
        print(line)
    return 0


AVERAGE_TAKES = frozenset({"average", "alpha", "project", "name", "exist_ok"})  # what --average uses

# What --resume still takes from the command line: where to train, the camera augmentation (kept in the run
# folder, and given again it is used) and, for the latest run, where runs are.
RESUME_TAKES = frozenset({"resume", "device", "camera_aug"})


def given_on_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The dests the command line sets itself (a default is not given, even when a flag repeats it)."""
    saved = {action: action.default for action in parser._actions}
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        return set(vars(parser.parse_args(argv)))
    finally:
        for action, default in saved.items():
            action.default = default


def settings_given_beyond(parser: argparse.ArgumentParser, argv: list[str] | None, args, takes: frozenset[str]) -> list[str]:
    """The flags (and key=value settings) the command line gives that a mode taking only `takes` would drop."""
    given = given_on_command_line(parser, argv) - takes
    return [action.option_strings[0] for action in parser._actions if action.dest in given and action.option_strings] \
        + list(args.overrides)


def refuse_settings_resume_ignores(parser: argparse.ArgumentParser, argv: list[str] | None, args) -> None:
    """--resume continues a run exactly as it was started (Ultralytics reloads the run's own settings), so any
    other setting would be dropped without a word (`--resume --epochs 2 --imgsz 320` trained to epoch 200 at the
    old size): refuse it in one line, as YOLOv5 users expect resume to go on with the same run."""
    ignored = settings_given_beyond(parser, argv, args, RESUME_TAKES | ({"project"} if args.resume is True else set()))
    if ignored:
        start = "" if args.resume is True else f" --model {shlex.quote(str(args.resume))}"
        if args.resume is True:  # the latest run's, the one --resume would continue
            from maskdet.training.trainer import find_last_checkpoint

            try:
                start = f" --model {shlex.quote(str(find_last_checkpoint(Path(args.project))))}"
            except UserError:
                pass
        parser.error(f"--resume continues a run with the settings it was started with, so {', '.join(ignored)} would "
                     f"be ignored: leave {'it' if len(ignored) == 1 else 'them'} out, or start a new run from its weights "
                     f"(python train.py{start or ' --model runs/train/<name>/weights/last.pt'} ...)")


def average(args) -> int:
    """--average A B: one checkpoint from two, in a run folder of its own."""
    from maskdet.errors import require_modules
    from maskdet.fileio import next_run_dir

    require_modules("train.py --average", "torch", "ultralytics")
    from maskdet.training.average import average_checkpoints, save_checkpoint

    averaged = average_checkpoints(args.average[0], args.average[1], args.alpha)  # refused before a folder is made
    out = save_checkpoint(averaged, next_run_dir(args.project, args.name, args.exist_ok) / "weights" / "best.pt")
    print(f"averaged: {1 - args.alpha:g} x {args.average[0]} + {args.alpha:g} x {args.average[1]}\n"
          f"weights: {out}\nnext: python val.py --weights {shlex.quote(str(out))} --data {shlex.quote(str(args.data))} "
          "--split val (with the --imgsz its runs trained at)")
    return 0
