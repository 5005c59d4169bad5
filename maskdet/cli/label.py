"""python labeling/label.py: draw boxes with labelImg, saved as YOLO labels with data.yaml's class ids."""

from __future__ import annotations

import argparse
from pathlib import Path

from maskdet.cli import add_data_arg, make_parser
from maskdet.config import load_dataset_config
from maskdet.display import display_problem
from maskdet.errors import UserError
from maskdet.labelimg_launcher import (
    NO_FIX_ENV,
    check_classes_txt,
    has_images,
    prepare_labels_dir,
    run_labelimg,
)

EXAMPLES = f"""in labelImg:
  w            draw a box (drag), then pick its class in the dialog (Enter)
  Ctrl+S       save (YOLO .txt in the labels folder)       d / a   next / previous image
  Ctrl+wheel   zoom (also Ctrl++ Ctrl+- Ctrl+=)             wheel   scroll
  View > Auto Save mode saves when you go to the next image.

classes.txt: labelImg writes it beside the labels from its class list. Typing a name that is
not in data.yaml appends a class, and boxes with it get an id data.yaml does not have: you are
warned (dialog and stderr) after such a save. A classes.txt that already disagrees with
data.yaml when you start is refused (see --force); a missing one is written from data.yaml.

examples:
  # photos and their .txt labels in one folder
  python labeling/label.py --images photos
  # fix labels of the training split (labels default to the sibling labels/ folder)
  python labeling/label.py --images data/train/images
  # on a server without a desktop: connect with X forwarding, then run it there as usual
  ssh -X you@server

labelImg 1.8.6 crashes on Python 3.10+ (floats passed to Qt); this script fixes that at runtime.
{NO_FIX_ENV}=1 turns the fixes off, to check whether a problem is labelImg's own.
"""


def default_labels_dir(images_dir: Path) -> Path:
    """Beside the images, except in an Ultralytics .../images/ folder, whose labels training reads
    from the sibling .../labels/ (a .txt next to such an image would be silently ignored)."""
    return images_dir.parent / "labels" if images_dir.name == "images" else images_dir


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("label.py", "Open labelImg on a folder of images, set up for this project: YOLO format, the classes\n"
                         "of data.yaml in its order, labels saved to --labels.", EXAMPLES)
    # SUPPRESS: no "(default: None)" after a help text that says what the default is
    parser.add_argument("--images", required=True, default=argparse.SUPPRESS,
                        help="folder of images to label (sub-folders included, as labelImg does)")
    parser.add_argument("--labels", default=argparse.SUPPRESS,
                        help="folder to read and save the YOLO .txt labels and classes.txt in, created if missing "
                        "(default: the --images folder; for a folder named images/, its sibling labels/)")
    add_data_arg(parser)
    parser.add_argument("--force", action="store_true", help="open even though classes.txt in the labels folder disagrees "
                        "with data.yaml (the labels there use other class ids)")
    args = parser.parse_args(argv)

    config = load_dataset_config(args.data)
    images_dir = Path(args.images)
    if not images_dir.is_dir():
        raise UserError("images folder not found", images_dir)
    if not has_images(images_dir):
        raise UserError("no images (.jpg, .png, ...) in this folder", images_dir)
    labels_dir = Path(args.labels) if "labels" in args else default_labels_dir(images_dir)
    if labels_dir.exists() and not labels_dir.is_dir():
        raise UserError("labels folder is a file", labels_dir)
    if not labels_dir.exists() and not labels_dir.parent.is_dir():
        raise UserError("labels folder not found, and neither is the folder to create it in", labels_dir)
    check_classes_txt(labels_dir, config.names, args.force)
    problem = display_problem("labelImg")
    if problem:
        raise UserError(problem)
    prepare_labels_dir(labels_dir, config.names)  # only now: a refused launch writes nothing
    print(f"labelImg: images {images_dir}, labels {labels_dir} (YOLO), classes {', '.join(config.names)}", flush=True)
    return run_labelimg(images_dir.resolve(), labels_dir.resolve(), config.names)
