#!/usr/bin/env python3
"""Accuracy of a model on the dataset's splits: the figures the model card quotes, in one command.

Two jobs, both with Ultralytics' validator (the same as `python val.py`):

    python bench/model_accuracy.py --sizes 640 704 768 832         # choose the inference size on VAL
    python bench/model_accuracy.py --imgsz 768 --card models/metrics.json   # write the card's figures

The first prints mAP50 / mAP50-95 on the val split at each size (choose there, never on test). The
second evaluates `--weights` on test and val and its .onnx sibling on test, and writes the per-class
P, R, mAP50, mAP50-95 to the JSON file that models/README.md quotes and that
tests/test_kaggle_integration.py checks against a fresh evaluation. With `--twins` (by default
../shared/datasets/kaggle-facemask/near_duplicates.csv, when it exists) it also evaluates the test
split without the photos that have a twin in train or val, under the key `test_without_twins`, and
lists those photos under `twins`. `--add KEY=MODEL` adds another form (INT8, ONNX) under `forms`; with
`--augment`, as `val.py --augment` scores it (detect.py --augment's test-time augmentation).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from maskdet.cli import IMGSZ, ArgumentParser, HelpFormatter  # noqa: E402
from maskdet.config import INFERENCE_IMGSZ  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402
from maskdet.evaluation.metrics import MAP_CONF, MAP_IOU  # noqa: E402
from maskdet.evaluation.twins import TWINS_CSV, photos_with_a_twin, write_split_without  # noqa: E402
from maskdet.evaluation.validate import evaluate, evaluate_augmented  # noqa: E402
from maskdet.fileio import atomic_write_text  # noqa: E402


def figures(weights: Path, data: str, split: str, imgsz: int, workdir: Path,
            augment: bool = False) -> dict[str, dict[str, float]]:
    """{class: {P, R, mAP50, mAP50-95}} with 'all' first, rounded as the card prints them (val.py, or with
    augment val.py --augment)."""
    if augment:
        result = evaluate_augmented(weights, data, split=split, imgsz=imgsz, conf=MAP_CONF, iou=MAP_IOU, project=workdir)
    else:
        result = evaluate(weights, data, split=split, imgsz=imgsz, conf=MAP_CONF, iou=MAP_IOU, project=workdir, plots=False)
    return {cls: {m: round(float(row[m]), 4) for m in ("P", "R", "mAP50", "mAP50-95")}
            for cls, row in result.table.iterrows()}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--weights", default=str(ROOT / "models" / "best.pt"), help=".pt model (its .onnx sibling is evaluated too)")
    parser.add_argument("--data", default=str(ROOT / "data.yaml"), help="dataset description with val and test splits")
    parser.add_argument("--sizes", type=IMGSZ, nargs="+", help="inference sizes to compare on the val split")
    parser.add_argument("--imgsz", type=IMGSZ, default=INFERENCE_IMGSZ, help="inference size for the card's figures")
    parser.add_argument("--card", help="write the card's figures (test, val, test_onnx) to this JSON file")
    parser.add_argument("--add", metavar="KEY=MODEL",
                        help="add another form of the model (e.g. int8=models/best_int8_openvino_model) to an existing "
                             "--card: its val, test and test-without-twins figures under card['forms'][KEY], the "
                             "others left as they are")
    parser.add_argument("--augment", action="store_true",
                        help="with --add: evaluate the form as val.py --augment does (detect.py --augment's test-time "
                             "augmentation), e.g. --add int8_augment=models/best_int8_openvino_model --augment")
    parser.add_argument("--twins", default=str(TWINS_CSV) if TWINS_CSV.exists() else None,
                        help="near_duplicates.csv: also report test without the photos with a twin in train or val "
                             "(default: the Kaggle one in ../shared when present)")
    args = parser.parse_args(argv)
    if args.add is not None:
        key, sep, model = args.add.partition("=")
        if not sep or not key or not model:
            parser.error(f"--add needs KEY=MODEL, got {args.add!r}")
        if not args.card:
            parser.error("--add needs --card FILE: the existing card the form is added to")
        if not Path(args.card).is_file():
            raise UserError("no such file: --add adds a form to an existing --card (write it first with --card "
                            "alone)", args.card)
        return add_form(args)
    if not args.sizes and not args.card:
        parser.error("give --sizes (choose on val) and/or --card FILE (write the figures)")

    weights = Path(args.weights)
    previous = read_card(Path(args.card)) if args.card and Path(args.card).exists() else {}  # a bad one said first
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.sizes:
            print(f"{weights} on the val split:")
            for size in args.sizes:
                overall = figures(weights, args.data, "val", size, workdir)["all"]
                print(f"  imgsz {size:4d}: mAP50 {overall['mAP50']:.3f}  mAP50-95 {overall['mAP50-95']:.3f}", flush=True)
        if args.card:
            card = {"weights": str(weights.relative_to(ROOT)) if weights.is_relative_to(ROOT) else str(weights),
                    "imgsz": args.imgsz, "conf": MAP_CONF, "iou": MAP_IOU,
                    "test": figures(weights, args.data, "test", args.imgsz, workdir),
                    "val": figures(weights, args.data, "val", args.imgsz, workdir)}
            onnx = weights.with_suffix(".onnx")
            if onnx.exists():
                card["test_onnx"] = figures(onnx, args.data, "test", args.imgsz, workdir)
            if args.twins:
                twins = photos_with_a_twin(args.twins)
                subset = write_split_without(args.data, "test", twins, workdir / "without_twins")
                card["test_without_twins"] = figures(weights, str(subset.data_yaml), "test", args.imgsz, workdir)
                card["twins"] = {"csv": Path(args.twins).name, "images": subset.kept,
                                 "left_out": {stem: twins[stem] for stem in subset.left_out}}
                print(f"test without twins: {len(subset.left_out)} test photos with a twin in train or val left out, "
                      f"{subset.kept} kept")
            # what this command does not measure is kept (another study's figures), except the other forms of
            # the model: those were of the model this card described before (add them again with --add)
            kept = {k: v for k, v in previous.items() if k not in card and k != "forms"}
            if kept:
                print(f"kept from the previous card: {', '.join(kept)}")
            atomic_write_text(Path(args.card), json.dumps({**card, **kept}, indent=2) + "\n")
            for key in ("test", "val", "test_onnx", "test_without_twins"):
                if key in card:
                    a = card[key]["all"]
                    print(f"{key:<18} P {a['P']:.3f}  R {a['R']:.3f}  mAP50 {a['mAP50']:.3f}  mAP50-95 {a['mAP50-95']:.3f}")
            print(f"wrote {args.card}")
    return 0


def read_card(path: Path) -> dict:
    """A card written by --card: a JSON object, or a one-line error naming the file."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"not a card written by --card (not JSON: {exc})", path) from None
    if not isinstance(card, dict):
        raise UserError("not a card written by --card (not a JSON object)", path)
    return card


def add_form(args: argparse.Namespace) -> int:
    """Evaluate one more form of the shipped model (an INT8 export, say) into an existing card, keeping the rest."""
    key, _, model = args.add.partition("=")  # checked by main()
    card = read_card(Path(args.card))
    form = {"weights": model, "imgsz": args.imgsz, **({"augment": True} if args.augment else {})}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for split in ("val", "test"):
            form[split] = figures(Path(model), args.data, split, args.imgsz, workdir, args.augment)
            print(f"{key} {split}: {form[split]['all']}", flush=True)
        if args.twins:
            subset = write_split_without(args.data, "test", photos_with_a_twin(args.twins), workdir / "without_twins")
            form["test_without_twins"] = figures(Path(model), str(subset.data_yaml), "test", args.imgsz, workdir, args.augment)
            print(f"{key} test_without_twins: {form['test_without_twins']['all']}", flush=True)
    card.setdefault("forms", {})[key] = form
    atomic_write_text(Path(args.card), json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.card}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
