"""python labeling/import_yolo.py: bring another YOLO dataset (e.g. a Roboflow export) into this project."""

from __future__ import annotations

import argparse
from pathlib import Path

from maskdet.cli import add_data_arg, add_map_arg, make_parser
from maskdet.config import load_dataset_config, parse_class_map
from maskdet.data.convert import file_name_prefix_problem, import_yolo_dataset, print_outside_text

EXAMPLES = """examples:
  # a Roboflow export whose classes are named mask / no-mask / incorrect
  python labeling/import_yolo.py --src roboflow/data.yaml --out incoming --prefix rf_ \\
      --map mask=with_mask --map no-mask=without_mask --map incorrect=mask_weared_incorrect
  # then split the merged folder as usual
  python labeling/split.py --images incoming/images --labels incoming/labels
"""


def file_name_prefix(text: str) -> str:
    """argparse type of --prefix: refused at once (exit 2) when it is a path, before anything is read or written."""
    problem = file_name_prefix_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{ascii(text)} {problem}: it goes in front of each file name inside --out")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("import_yolo.py", "Import a YOLO dataset described by its own data.yaml: class ids are renumbered by\n"
                         "name onto this project's data.yaml, images and labels of all its splits are copied\n"
                         "into OUT/images and OUT/labels, ready for split.py. A photo with boxes, none of which\n"
                         "can be imported, or with a box far outside [0, 1] (pixels?) is left out and listed.", EXAMPLES)
    parser.add_argument("--src", required=True, help="the other dataset's data.yaml")
    parser.add_argument("--out", required=True, help="folder to write images/ and labels/ into")
    add_data_arg(parser)
    add_map_arg(parser)
    parser.add_argument("--prefix", default="", type=file_name_prefix,
                        help="prepend to every file name, to keep merged datasets apart (file-name characters only: "
                             "no path separator or '..')")
    parser.add_argument("--force", action="store_true", help="overwrite files that already exist with other content (those exactly as this import writes them, "
                        "from an earlier or interrupted run, are kept without it), and a classes.txt there that "
                        "disagrees with data.yaml")
    args = parser.parse_args(argv)

    config = load_dataset_config(args.data)
    report = import_yolo_dataset(Path(args.src), Path(args.out), config, parse_class_map(args.map),
                                 prefix=args.prefix, force=args.force, echo=print_outside_text)
    for line in report.summary_lines(Path(args.out)):
        print_outside_text(line)
    return report.exit_status
