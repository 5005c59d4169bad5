#!/usr/bin/env python3
"""Which of these models is better, and can this split tell? mAP with bootstrap intervals, and each model's
difference from the first on the same resampled photos (a paired bootstrap; maskdet.evaluation.bootstrap).

    python bench/compare_models.py models/best_int8_openvino_model models/best.onnx --data data/kaggle/data.yaml
    python bench/compare_models.py models/best_int8_openvino_model --with-augment --data data/kaggle/data.yaml
    python bench/compare_models.py A_openvino_model B_openvino_model --data data/kaggle/data.yaml --json compare.json

Every model is scored as val.py scores an exported model (conf 0.001, IoU 0.7, every class a box scores over
it, the validator's matching and AP): the figure on the split itself is val.py's. A difference whose interval
holds 0 is one the split cannot tell from the luck of which photos it holds. Exported models only (.onnx,
OpenVINO folders): export a .pt first (python export.py --weights X.pt).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402
from maskdet.evaluation.bootstrap import bootstrap  # noqa: E402
from maskdet.evaluation.pipeline_map import photo_matches  # noqa: E402
from maskdet.evaluation.validate import checked_split, load_as_validator, predict_as_validator  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("models", nargs="+", help="exported models (.onnx, OpenVINO folders); the first is the one the "
                                                  "others are compared with")
    parser.add_argument("--data", required=True, help="the dataset (YOLO data.yaml)")
    parser.add_argument("--split", default="val", choices=["val", "test"], help="choose on val, report test once")
    parser.add_argument("--imgsz", type=number(int, 32, 8192), default=None,
                        help="inference size (default: each model's own; the shipped ones are 704)")
    parser.add_argument("--with-augment", action="store_true", help="also each model with --augment (its mirror view)")
    parser.add_argument("--rounds", type=number(int, 100, 100_000), default=2000, help="bootstrap rounds")
    parser.add_argument("--level", type=number(float, 0.5, 0.999), default=0.95, help="the intervals' coverage")
    parser.add_argument("--seed", type=number(int, 0, 2**32 - 1), default=0, help="which photos each round draws")
    parser.add_argument("--json", default=None, help="also write the figures here")
    return compare(parser.parse_args(argv))


def compare(args: argparse.Namespace) -> int:
    started = time.time()
    config = checked_split(args.data, args.split)
    matches, names = {}, None
    for i, model in enumerate(args.models):
        if Path(model).name in {Path(m).name for m in args.models[:i]}:
            raise UserError(f"{Path(model).name} is given twice")
        detector = load_as_validator(model, config, args.imgsz)  # once, for its mirror view too
        names = detector.names
        for augment in (False, True) if args.with_augment else (False,):
            key = f"{Path(model).name}{' --augment' if augment else ''}"
            predictions, _ = predict_as_validator(detector, config, args.split, augment, label=Path(model).name)
            matches[key] = photo_matches(predictions)
    result = bootstrap(matches, names, args.rounds, args.level, args.seed)
    first = next(iter(matches))
    width = max(len(key) for key in matches)
    percent = f"{args.level:.0%}"
    print(f"{'model':<{width}}  {'mAP50 [' + percent + ']':<22}  {'mAP50-95 [' + percent + ']':<22}  "
          f"{'mAP50 minus the first [' + percent + ']':<30}  better in")
    for key in matches:
        line = f"{key:<{width}}  {result.map50[key]!s:<22}  {result.map50_95[key]!s:<22}"
        if key in result.against_first:
            c = result.against_first[key]
            difference = f"{c.difference.estimate:+.3f} [{c.difference.low:+.3f}, {c.difference.high:+.3f}]"
            line += f"  {difference:<30}  {c.b_better:.0%} of rounds"
        print(line)
    photos = len(next(iter(matches.values())))
    print(f"{args.split} split, {photos} photos, {args.rounds} bootstrap rounds over photos (seed {args.seed}), "
          f"against {first}; {time.time() - started:.0f} s")
    if args.json:
        out = {"split": args.split, "photos": photos, "rounds": args.rounds, "level": args.level, "seed": args.seed,
               "models": {key: {"mAP50": vars(result.map50[key]), "mAP50-95": vars(result.map50_95[key])} for key in matches},
               "against_first": {key: {"mAP50_difference": vars(c.difference), "mAP50-95_difference": vars(c.difference_50_95),
                                       "better_in": c.b_better} for key, c in result.against_first.items()}}
        write_json(args.json, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
