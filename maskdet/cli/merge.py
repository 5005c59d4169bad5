"""python labeling/merge.py: add reviewed photos and their labels to the dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maskdet.cli import SEED, make_parser
from maskdet.cli.label import default_labels_dir
from maskdet.cli.split import SHARE
from maskdet.config import DEFAULT_DATA_YAML, SPLITS, load_dataset_config
from maskdet.data.labelimg_launcher import check_classes_txt
from maskdet.data.merge import added_lines, apply_merge, plan_merge
from maskdet.errors import UserError

EXAMPLES = """examples:
  # after prelabel.py and a review in label.py
  python labeling/merge.py --images new_photos --into data.yaml
  # see what would happen first
  python labeling/merge.py --images new_photos --into data.yaml --dry-run
  # keep the test split exactly as it is: new photos go to train and val only
  python labeling/merge.py --images new_photos --labels new_labels --ratios 0.8 0.2 0

Photos already in the dataset (same content, whatever the name) are skipped and listed; so are
photos without a label file (an empty one means "no face") and photos whose labels check.py would
reject. Files are copied, never moved, and nothing in the dataset is overwritten.
"""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("merge.py", "Add reviewed photos and their YOLO labels to the dataset of a data.yaml: existing\n"
                         "photos keep their split, new ones are spread over the splits as split.py does.", EXAMPLES)
    parser.add_argument("--images", required=True, default=argparse.SUPPRESS, help="folder of reviewed photos")
    parser.add_argument("--labels", default=argparse.SUPPRESS,
                        help="folder of their YOLO .txt labels (default: as label.py and prelabel.py: the --images "
                        "folder; for a folder named images/, its sibling labels/)")
    parser.add_argument("--into", "--data", dest="into", default=str(DEFAULT_DATA_YAML),
                        help="data.yaml of the dataset to grow (its split folders receive the photos)")
    parser.add_argument("--ratios", nargs=3, type=SHARE, default=[0.7, 0.15, 0.15], metavar=("TRAIN", "VAL", "TEST"),
                        help="how the new photos are shared out over the splits (as split.py; 0 leaves a split alone)")
    parser.add_argument("--seed", type=SEED, default=0, help="random seed: the same seed gives the same assignment")
    parser.add_argument("--dry-run", action="store_true", help="say what would be added where, and write nothing")
    args = parser.parse_args(argv)

    config = load_dataset_config(args.into)
    images_dir = Path(args.images)
    if not images_dir.is_dir():
        raise UserError("images folder not found", images_dir)
    labels_dir = Path(args.labels) if "labels" in args else default_labels_dir(images_dir)
    if not labels_dir.is_dir():
        raise UserError("labels folder not found", labels_dir)
    if any(r < 0 for r in args.ratios):
        raise UserError(f"--ratios must not be negative, got {args.ratios}")
    ratios = {s: r for s, r in zip(SPLITS, args.ratios) if s in config.split_images and r > 0}
    if not ratios:
        raise UserError(f"--ratios {args.ratios} give no photo to any split data.yaml has ({', '.join(config.split_images)})")
    total = sum(ratios.values())
    # The labels' ids must mean data.yaml's classes (refused otherwise); a stale classes.txt is left as it is.
    check_classes_txt(labels_dir, config.names, force=False, echo=lambda line: None, again="merge again")

    plan = plan_merge(images_dir, labels_dir, config, {s: r / total for s, r in ratios.items()}, args.seed)
    if not args.dry_run:
        try:
            apply_merge(plan, config)
        except KeyboardInterrupt:
            print(f"\nstopped after {plan.copied} of {plan.added} photos: run the same command again to add the rest "
                  "(by the same shares)", file=sys.stderr)
            raise
    verb = "would add" if args.dry_run else "added"
    print(f"{verb} {plan.added} photos to {config.root}" + (" (dry run: nothing written)" if args.dry_run else ""))
    for line in added_lines(plan, config, args.dry_run):
        print(f"  {line}")
    print(f"skipped {len(plan.duplicates)} already in the dataset and {len(plan.skipped)} that cannot be added as they "
          f"are (listed above); your folders were only read")
    if plan.added and not args.dry_run:
        print(f"next: python labeling/check.py --data {args.into}, then python train.py --data {args.into} (it "
              "fine-tunes the shipped model, models/best.pt; --model yolo11n.pt starts from COCO, as after a fresh "
              "split of the Kaggle photos, which the shipped model was trained on)")
    return 1 if plan.skipped else 0  # photos already in the dataset are no problem; photos left out are
