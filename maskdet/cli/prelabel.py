"""python labeling/prelabel.py: the model draws the boxes first, people correct them in labelImg."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from maskdet.cli import IMGSZ, add_data_arg, make_parser, number, run_name
from maskdet.cli.label import default_labels_dir
from maskdet.config import PROJECT_ROOT, load_dataset_config
from maskdet.data.convert import refuse_other_classes_txt
from maskdet.data.labelimg_launcher import check_classes_txt, prepare_labels_dir
from maskdet.data.prelabel import PRELABEL_CONF, REVIEW_FLOOR, check_model_classes, earlier_prelabels, prelabel_folder
from maskdet.errors import UserError
from maskdet.fileio import IMAGE_SUFFIXES, list_images, next_run_dir
from maskdet.models import default_weights
from maskdet.settings import DetectionSettings, Settings

EXAMPLES = f"""examples:
  # labels beside the photos, then review the least certain photos first
  python labeling/prelabel.py --images new_photos
  python labeling/label.py --images new_photos --order runs/prelabel/exp/review.txt
  # labels in their own folder, another model
  python labeling/prelabel.py --images new_photos --labels new_labels --weights runs/train/exp/weights/best.pt
  # then add them to the dataset
  python labeling/merge.py --images new_photos --into data.yaml
  # phone photos of a crowd (4000x3000, faces a few dozen pixels): look at 1280-px tiles too
  python labeling/prelabel.py --images crowd_photos --tile 1280

The default --conf {PRELABEL_CONF} is the threshold at which correcting the pre-labels costs the fewest
clicks on photos the shipped model never saw (bench/prelabel_saving.py). Boxes down to {REVIEW_FLOOR} are only
looked at, to put the photos whose closest call is nearest the threshold first in review.txt.

review.txt gets each photo's row as it is done (a stopped or killed run keeps a valid order of the photos it
did), sorted at the end. A label file that already exists is kept; one that an earlier run under --project
wrote and nobody changed since is kept too, and its photo goes in the review order again.

exit status: 0 all done; 1 some photos skipped (unreadable, or a name clash: each named above the summary);
2 bad input; 130 stopped by Ctrl-C or SIGTERM (the summary still printed; everything done so far is kept).
"""


def build_parser():
    """prelabel.py's flags (its --conf default is PRELABEL_CONF, chosen for labelling: see EXAMPLES)."""
    parser = make_parser("prelabel.py", "Pre-label photos with the model: a YOLO label file per photo (and classes.txt) where\n"
                         "labeling/label.py opens them, plus the order to review them in (runs/prelabel/expN/review.txt).",
                         EXAMPLES)
    parser.add_argument("--images", required=True, default=argparse.SUPPRESS, help="folder of new photos")
    parser.add_argument("--labels", default=argparse.SUPPRESS,
                        help="folder to write the YOLO .txt labels and classes.txt in, created if missing "
                        "(default: as label.py: the --images folder; for a folder named images/, its sibling labels/)")
    parser.add_argument("--weights", default=argparse.SUPPRESS, help="OpenVINO folder, .onnx or .pt model (default: models/best_int8_openvino_model when openvino is installed, else models/best.onnx, else models/best.pt)")
    add_data_arg(parser)
    parser.add_argument("--conf", type=number(float, 0, 1, low_open=True, high_open=True), default=PRELABEL_CONF,
                        help="minimum confidence of a box to write (the default costs the fewest corrections)")
    parser.add_argument("--imgsz", type=IMGSZ, default=argparse.SUPPRESS, help="inference size in pixels (default: the model's own)")
    parser.add_argument("--device", default=argparse.SUPPRESS, help="'cpu', or a CUDA device such as '0' (default: the GPU if there is one)")
    parser.add_argument("--tile", type=int, default=DetectionSettings.tile, metavar="PX",
                        help="for photos much larger than the model's input (a phone's 4000x3000) with small faces: also look "
                             "at overlapping PX x PX tiles, as detect.py --tile (about one inference per tile); 0 = off")
    parser.add_argument("--force", action="store_true", help="replace label files that already exist (someone's work: kept otherwise), and a classes.txt that "
                        "disagrees with data.yaml")
    parser.add_argument("--project", default=str(PROJECT_ROOT / "runs" / "prelabel"), help="where run folders go")
    parser.add_argument("--name", type=run_name, default="exp", help="run folder name (exp, exp2, ... if it exists)")
    parser.add_argument("--exist-ok", action="store_true", help="reuse the run folder instead of numbering a new one")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    config = load_dataset_config(args.data)
    images_dir = Path(args.images)
    if images_dir.exists() and not images_dir.is_dir():
        raise UserError("is a file, not a folder: --images takes the folder of photos to pre-label", images_dir)
    if not images_dir.is_dir():
        raise UserError("images folder not found", images_dir)
    if not list_images(images_dir):  # refused before anything is written into the user's folders
        raise UserError(f"no photos in this folder ({' '.join(sorted(IMAGE_SUFFIXES))})", images_dir)
    labels_dir = Path(args.labels) if "labels" in args else default_labels_dir(images_dir)
    if labels_dir.exists() and not labels_dir.is_dir():
        raise UserError("labels folder is a file", labels_dir)
    stale = (check_classes_txt(labels_dir, config.names, force=False, again="pre-label again", echo=lambda _: None)
             if labels_dir.is_dir() else False)
    if stale:  # no label uses an id it gives another class, but it is someone's file: replaced only with --force
        refuse_other_classes_txt(labels_dir, config.names, args.force)
    weights = getattr(args, "weights", None) or default_weights(getattr(args, "device", None))
    from maskdet.pipeline.step import Pipeline  # the model and its step, only once the arguments are good

    step = Pipeline(Settings(detection=DetectionSettings(weights=weights, conf=min(REVIEW_FLOOR, args.conf),
                                                         imgsz=getattr(args, "imgsz", None), device=getattr(args, "device", None),
                                                         tile=args.tile)))
    check_model_classes(step, config.names, weights)
    earlier = earlier_prelabels(Path(args.project), images_dir, labels_dir)  # before this run's review.txt replaces one
    run_dir = next_run_dir(args.project, args.name, args.exist_ok)  # before the labels folder: it may fail (a file)
    labels_dir.mkdir(parents=True, exist_ok=True)
    prepare_labels_dir(labels_dir, config.names, rewrite_classes_txt=stale)
    review_file = run_dir / "review.txt"
    print(f"prelabel: {images_dir} with {weights} at --conf {args.conf}, labels to {labels_dir}", flush=True)
    # `kill` (SIGTERM) stops as cleanly as Ctrl-C (as detect.py): the review order sorted, the summary printed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    report = prelabel_folder(images_dir, labels_dir, step, args.conf, args.force, review_file,
                             echo=lambda line: print(line, flush=True), earlier=earlier)
    if report.interrupted:
        print()  # after the terminal's ^C
    for line in report.summary_lines(labels_dir):
        print(line)
    labels_arg = f" --labels {labels_dir}" if "labels" in args else ""
    print(f"review order ({len(report.review)} photos, least sure first): {review_file}")
    print(f"next: python labeling/label.py --images {images_dir}{labels_arg} --order {review_file}")
    return report.exit_status  # as detect.py: 130 interrupted, 1 photos were skipped (each named above)
