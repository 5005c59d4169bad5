"""python labeling/label.py: draw boxes with labelImg, saved as YOLO labels with data.yaml's class ids."""

from __future__ import annotations

import argparse
from pathlib import Path

from maskdet.cli import add_data_arg, make_parser
from maskdet.config import labels_dir_for, load_dataset_config
from maskdet.data.labelimg_launcher import (
    NO_FIX_ENV,
    check_classes_txt,
    has_images,
    prepare_labels_dir,
    run_labelimg,
)
from maskdet.data.review import read_review_order
from maskdet.errors import UserError, require_modules
from maskdet.inference.display import display_problem

EXAMPLES = f"""in labelImg:
  w            draw a box (drag), then pick its class in the dialog (Enter)
  Ctrl+S       save (YOLO .txt in the labels folder)       d / a   next / previous image
  Ctrl+wheel   zoom (also Ctrl++ Ctrl+- Ctrl+=)             wheel   scroll
  View > Auto Save mode saves when you go to the next image.

classes.txt: labelImg writes it beside the labels from its class list. A class name typed in
the dialog that data.yaml does not have is refused there (dialog and stderr), before anything
is saved: pick one of data.yaml's. A classes.txt that disagrees with data.yaml when you start is
rewritten from data.yaml when no label uses an id it changes, and refused otherwise, naming the
lines to fix (see --force); a missing one is written from data.yaml.

examples:
  # photos and their .txt labels in one folder
  python labeling/label.py --images photos
  # photos pre-labelled by prelabel.py, the ones the model was least sure about first
  python labeling/label.py --images photos --order runs/prelabel/exp/review.txt
  # fix labels of the training split (labels default to the sibling labels/ folder)
  python labeling/label.py --images data/train/images
  # on a server without a desktop: connect with X forwarding, then run it there as usual
  ssh -X you@server

labelImg 1.8.6 crashes on Python 3.10+ (floats passed to Qt); this script fixes that at runtime.
{NO_FIX_ENV}=1 turns the fixes off, to check whether a problem is labelImg's own.
"""


def default_labels_dir(images_dir: Path) -> Path:
    """Where training reads them: beside the images, except under an Ultralytics .../images/ folder,
    whose labels live in .../labels/ (a .txt next to such an image would be silently ignored)."""
    return labels_dir_for(images_dir)


def photos_in_order(order_file: Path, images_dir: Path) -> list[str]:
    """The listed photos found in images_dir, in the file's order; refused when none is there."""
    listed = read_review_order(order_file)
    found = [name for name in listed if (images_dir / name).is_file()]
    if not found:
        raise UserError(f"none of the {len(listed)} photos it lists is in {images_dir}", order_file)
    if len(found) < len(listed):
        print(f"note: {len(listed) - len(found)} of the {len(listed)} photos in {order_file} are not in {images_dir}")
    print(f"review order: {len(found)} photos from {order_file} first, least sure first")
    return found


def folder_path(text: str) -> str:
    """An argparse `type` for --images and --labels: '' would silently be the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a folder, not an empty path")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("label.py", "Open labelImg on a folder of images, set up for this project: YOLO format, the classes\n"
                         "of data.yaml in its order, labels saved to --labels.", EXAMPLES)
    # SUPPRESS: no "(default: None)" after a help text that says what the default is
    parser.add_argument("--images", required=True, default=argparse.SUPPRESS, type=folder_path,
                        help="folder of images to label (sub-folders included, as labelImg does)")
    parser.add_argument("--labels", default=argparse.SUPPRESS, type=folder_path,
                        help="folder to read and save the YOLO .txt labels and classes.txt in, created if missing "
                        "(default: the --images folder; for a folder named images/, its sibling labels/)")
    add_data_arg(parser)
    parser.add_argument("--order", default=argparse.SUPPRESS,
                        help="open the photos in the order this file lists them (prelabel.py's review.txt: the ones the "
                        "model was least sure about first); photos it does not list come after")
    parser.add_argument("--force", action="store_true", help="open even though classes.txt in the labels folder disagrees "
                        "with data.yaml (the labels there use other class ids)")
    args = parser.parse_args(argv)
    require_modules("label.py", "labelImg", "PyQt5", "lxml")  # the window: say what to install before any work

    config = load_dataset_config(args.data)
    images_dir = Path(args.images)
    if images_dir.exists() and not images_dir.is_dir():
        raise UserError("is a file, not a folder: --images takes the folder of images to label", images_dir)
    if not images_dir.is_dir():
        raise UserError("images folder not found", images_dir)
    if not has_images(images_dir):
        raise UserError("no images (.jpg, .png, ...) in this folder", images_dir)
    labels_dir = Path(args.labels) if "labels" in args else default_labels_dir(images_dir)
    if labels_dir.exists() and not labels_dir.is_dir():
        raise UserError("labels folder is a file", labels_dir)
    if not labels_dir.exists() and not labels_dir.parent.is_dir():
        raise UserError("labels folder not found, and neither is the folder to create it in", labels_dir)
    order = photos_in_order(Path(args.order), images_dir) if "order" in args else None
    stale_classes_txt = check_classes_txt(labels_dir, config.names, args.force)
    problem = display_problem("labelImg")
    if problem:
        raise UserError(problem)
    prepare_labels_dir(labels_dir, config.names, rewrite_classes_txt=stale_classes_txt)  # only now: a refused launch writes nothing
    print(f"labelImg: images {images_dir}, labels {labels_dir} (YOLO), classes {', '.join(config.names)}", flush=True)
    return run_labelimg(images_dir.resolve(), labels_dir.resolve(), config.names, order)
