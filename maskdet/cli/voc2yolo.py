"""python labeling/voc2yolo.py: Pascal VOC XML -> YOLO txt."""

from __future__ import annotations

from pathlib import Path

from maskdet.cli import add_data_arg, add_map_arg, make_parser, number
from maskdet.config import load_dataset_config, parse_class_map
from maskdet.data.convert import convert_voc_folder, print_outside_text
from maskdet.errors import UserError, require_modules

EXAMPLES = """examples:
  # the Kaggle face-mask dataset (images/ and annotations/ side by side)
  python labeling/voc2yolo.py --xml kaggle/annotations --images kaggle/images --out kaggle/labels
  # the ILC 2021 set: its boxes hold ~15 % more forehead than Kaggle's
  python labeling/voc2yolo.py --xml ilc/annotations --images ilc/images --out ilc/labels --trim-top 0.13
  # labelImg's default (PascalVOC) mode saved XML next to the photos; other class names
  python labeling/voc2yolo.py --xml photos --images photos --out photos --map mask=with_mask --map no-mask=without_mask
"""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("voc2yolo.py", "Convert Pascal VOC XML labels (labelImg's default format, Kaggle) to YOLO txt files.\n"
                         "XML and image are matched by file stem; boxes crossing the image edge are clipped;\n"
                         "empty or inverted boxes are dropped and reported. A photo with boxes, none of which can\n"
                         "be imported, gets no label file (an empty one would mean a photo without faces).", EXAMPLES)
    parser.add_argument("--xml", required=True, help="folder of .xml annotation files")
    parser.add_argument("--images", help="folder of the images (default: the --xml folder)")
    parser.add_argument("--out", required=True, help="folder to write <stem>.txt labels and classes.txt to")
    add_data_arg(parser)
    add_map_arg(parser)
    parser.add_argument("--trim-top", type=number(float, 0, 1, high_open=True), default=0.0, metavar="F",
                        help="shave this fraction of each box's height off its top, for datasets that draw "
                             "faces with more forehead than yours (ILC 2021: 0.13); 0 = keep the boxes")
    parser.add_argument("--force", action="store_true", help="overwrite label files that already exist, and a classes.txt there that disagrees with data.yaml")
    args = parser.parse_args(argv)
    require_modules("voc2yolo.py", "lxml")  # read only once XML is: say so before any work

    config = load_dataset_config(args.data)
    xml_dir = Path(args.xml)
    images_dir = Path(args.images or args.xml)
    for folder in (xml_dir, images_dir):  # a missing --images folder would otherwise end in a traceback
        if not folder.is_dir():
            raise UserError("not a folder", folder)
    report = convert_voc_folder(xml_dir, images_dir, Path(args.out), config,
                                parse_class_map(args.map), force=args.force, trim_top=args.trim_top,
                                echo=print_outside_text)
    for line in report.summary_lines(Path(args.out)):
        print_outside_text(line)
    return report.exit_status
