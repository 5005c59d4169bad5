"""python labeling/split.py: build data/{train,val,test}/{images,labels}."""

from __future__ import annotations

from pathlib import Path

from maskdet.cli import SEED, add_data_arg, make_parser, number
from maskdet.config import SPLITS, TRAINING_SPLITS, load_dataset_config
from maskdet.data.split import (
    SplitReport,
    check_class_ids,
    collect_samples,
    dataset_yaml_for,
    fill_empty_training_splits,
    mismatch,
    prepare_output,
    refuse_empty_training_splits,
    split_from_lists,
    stratified_split,
    usable_samples,
    write_split,
)
from maskdet.errors import UserError

# A split's share in --ratios (split.py, merge.py): shares are normalised, so any scale works, but a bound keeps
# their sum finite (three of 1e308 add up to inf, and every share to 0: every photo silently left out).
SHARE = number(float, 0, 1_000_000)

EXAMPLES = """examples:
  # 70/15/15, stratified so the rare class is in every split
  python labeling/split.py --images photos --labels photos
  # exactly the published split of a dataset
  python labeling/split.py --images kaggle/images --labels kaggle/labels --lists kaggle/splits
"""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("split.py", "Split a folder of images and YOLO labels into train/val/test under the dataset folder\n"
                         "of data.yaml. Originals are copied (or linked with --link), never moved or deleted.", EXAMPLES)
    parser.add_argument("--images", required=True, help="folder of images")
    parser.add_argument("--labels", help="folder of YOLO .txt labels (default: the --images folder)")
    add_data_arg(parser)
    parser.add_argument("--out", help="dataset folder to build (default: data.yaml's 'path')")
    parser.add_argument("--ratios", nargs=3, type=SHARE, default=[0.7, 0.15, 0.15], metavar=("TRAIN", "VAL", "TEST"),
                        help="fractions of images for each split (need not sum to 1; they are normalised); "
                             "train and val need a share, test may be 0")
    parser.add_argument("--seed", type=SEED, default=0, help="random seed: the same seed gives the same split")
    parser.add_argument("--lists", help="folder with train.txt / val.txt / test.txt listing image stems: split exactly so")
    parser.add_argument("--link", action="store_true", help="symlink instead of copying (saves disk; the originals must stay put)")
    parser.add_argument("--force", action="store_true", help="replace an existing split in the output folder")
    args = parser.parse_args(argv)

    config = load_dataset_config(args.data)
    images_dir = Path(args.images)
    labels_dir = Path(args.labels or args.images)
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise UserError("not a folder", folder)
    out_dir = Path(args.out) if args.out else config.root
    samples = collect_samples(images_dir, labels_dir)
    check_class_ids(samples, len(config.names), config.yaml_path)
    samples, left_out = usable_samples(samples, len(config.names))
    for line in left_out:
        print(f"skipped: {line} (fix it, then split again with --force; check.py lists every problem)")
    if not samples:
        raise UserError(f"none of the {len(left_out)} label files can be used as they are (listed above); nothing was "
                        "written", labels_dir)
    if args.lists:
        assignment = split_from_lists(samples, Path(args.lists))
        unlisted = len(samples) - sum(len(v) for v in assignment.values())
        refuse_empty_training_splits(assignment, "the lists", Path(args.lists))
        if unlisted:
            print(f"note: {unlisted} images are in no list and were left out")
    else:
        if any(r < 0 for r in args.ratios) or sum(args.ratios) <= 0:
            raise UserError(f"--ratios must be non-negative with a positive sum, got {args.ratios}")
        ratios = dict(zip(SPLITS, args.ratios))
        unshared = [split for split in TRAINING_SPLITS if ratios[split] == 0]
        if unshared:
            raise UserError(f"--ratios {' '.join(f'{r:g}' for r in args.ratios)} gives {' and '.join(unshared)} no photos: "
                            "training needs photos in both train and val (val measures each epoch); give each a share, "
                            "e.g. --ratios 0.8 0.2 0 (test may be 0)")
        if len(samples) < len(TRAINING_SPLITS):
            raise UserError(f"{len(samples)} photo cannot be split: training needs at least {len(TRAINING_SPLITS)}, one in "
                            "train and one in val; nothing was written", images_dir)
        total = sum(args.ratios)
        shares = {s: r / total for s, r in ratios.items()}
        assignment = stratified_split(samples, shares, args.seed)
        fill_empty_training_splits(assignment, shares)
        refuse_empty_training_splits(assignment, f"--ratios {' '.join(f'{r:g}' for r in args.ratios)}")
    emptied = prepare_output(out_dir, list(SPLITS), [images_dir, labels_dir], args.force)
    write_split(assignment, out_dir, link=args.link)
    print(f"split {sum(len(v) for v in assignment.values())} images into {out_dir}"
          + (" (symlinks)" if args.link else ""))
    for split in SPLITS:
        if split not in assignment and any(folder.parent.name == split for folder in emptied):
            print(f"note: emptied the old {split} split ({out_dir / split}): the lists name no {split}.txt")
    for line in SplitReport(assignment).summary_lines(config.names):
        print(line)
    dataset_yaml, written = dataset_yaml_for(out_dir, config)
    if written:
        print(f"wrote {dataset_yaml} (describes this dataset for check.py and train.py)")
    elif dataset_yaml != config.yaml_path and (why := mismatch(dataset_yaml, out_dir, config)):
        print(f"note: kept the data.yaml that was already there ({dataset_yaml}), but it does not describe this split: "
              f"{why}. Edit it, or move it away and split again with --force, before check.py and train.py")
    if left_out:
        print(f"skipped {len(left_out)} photos whose label files cannot be used as they are (listed above)")
    print(f"next: python labeling/check.py --data {dataset_yaml}")
    return 1 if left_out else 0  # photos left out of the dataset
