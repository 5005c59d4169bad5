"""python labeling/check.py: validate the dataset of data.yaml, optionally repair, and describe it."""

from __future__ import annotations

from maskdet.cli import add_data_arg, make_parser, run_name
from maskdet.config import PROJECT_ROOT, TRAINING_SPLITS, load_dataset_config
from maskdet.csvcells import safe_table
from maskdet.errors import UserError

EXAMPLES = """examples:
  python labeling/check.py                       # the dataset of ./data.yaml
  python labeling/check.py --fix                 # also clip boxes, drop empty and duplicate ones (backups kept)
  python labeling/check.py --data other.yaml --no-plots

exit status: 0 when nothing blocks training, 1 when there are errors (or repairs still to make), 2 on bad arguments.
"""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("check.py", "Validate images and YOLO labels of every split in data.yaml and print each problem\n"
                         "with file and line; describe the dataset (images, boxes per class, box sizes) and\n"
                         "write a class-balance plot and labelled previews under runs/check/.", EXAMPLES)
    add_data_arg(parser)
    parser.add_argument("--fix", action="store_true",
                        help="apply safe repairs only (clip boxes to the image, drop zero-size and duplicate boxes); "
                             "every changed file is backed up under the run folder first")
    parser.add_argument("--project", default=str(PROJECT_ROOT / "runs" / "check"), help="where run folders go")
    parser.add_argument("--name", type=run_name, default="exp", help="run folder name (exp, exp2, ... if it exists)")
    parser.add_argument("--exist-ok", action="store_true", help="reuse the run folder instead of numbering a new one")
    parser.add_argument("--no-plots", action="store_true", help="skip the class-balance plot and previews")
    args = parser.parse_args(argv)

    import pandas as pd

    from maskdet.data.check import apply_fixes, check_dataset
    from maskdet.data.convert import print_outside_text
    from maskdet.data.labels import Severity
    from maskdet.fileio import atomic_write_text, next_run_dir

    config = load_dataset_config(args.data)
    missing = [split for split in TRAINING_SPLITS if split not in config.split_images]
    if missing:  # nothing to check or describe: say what data.yaml lacks, leave no run folder
        raise UserError(f"names no {' and no '.join(repr(s) for s in missing)} folder: check.py and training need both "
                        "'train' and 'val' (e.g. train: train/images, val: val/images); python labeling/split.py "
                        "builds them from your photos and writes such a data.yaml", config.yaml_path)
    if config.split_images and not any(folder.is_dir() for folder in config.split_images.values()):
        # A fresh clone: the splits are built from the photos, not shipped. Say what to run, leave no run folder.
        folders = ", ".join(str(folder) for folder in config.split_images.values())
        raise UserError(f"none of the dataset's folders exist yet ({folders}): build them from your photos with "
                        "python labeling/split.py --images PHOTOS (README, 'The workflow': 3. Split)", config.yaml_path)
    run_dir = next_run_dir(args.project, args.name, args.exist_ok)  # before the scan: an unusable --project is said at once
    print_outside_text(f"checking {config.yaml_path} ({len(config.names)} classes: {', '.join(config.names)})")
    report = check_dataset(config)
    for issue in report.issues:
        print_outside_text(str(issue))

    fixed = apply_fixes(report, run_dir / "backup") if args.fix else []

    from maskdet.data.dataset_report import size_table, split_table, write_class_balance_plot, write_previews

    table = split_table(report)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print_outside_text("\n" + table.to_string())  # its columns are data.yaml's class names
        print_outside_text("\nbox sizes (side in pixels):\n" + size_table(report).to_string())
    atomic_write_text(run_dir / "splits.csv", safe_table(table).to_csv(index_label="split"))
    if not args.no_plots:
        write_class_balance_plot(report, run_dir / "class_balance.png")
        write_previews(report, run_dir)

    errors, fixable = report.count(Severity.ERROR), report.count(Severity.FIXABLE)
    print(f"\n{errors} errors, {fixable} fixable, {report.count(Severity.WARNING)} warnings"
          f"; {sum(s.backgrounds for s in report.splits.values())} background images (no boxes)")
    if fixed:
        print(f"fixed {len(fixed)} label files; originals backed up under {run_dir / 'backup'}")
    elif fixable:
        print("repair the fixable ones with --fix (backups are kept)")
    print(f"results saved to {run_dir}")
    # After --fix only errors remain: the fixable ones were repaired.
    return 0 if report.ok or (args.fix and errors == 0) else 1
