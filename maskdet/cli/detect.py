"""python detect.py: detect masks on images, folders, videos, webcams and streams."""

from __future__ import annotations

import signal

from maskdet.cli import CONFIDENCE, COUNT, IMGSZ, IOU, POSITIVE_INT, SECONDS, make_parser, number
from maskdet.config import PROJECT_ROOT
from maskdet.inference.detect import run
from maskdet.inference.sources import MAX_PIXELS, quiet_opencv_logs
from maskdet.monitoring.people import ALERT_AFTER_S, MIN_FRAMES

EXAMPLES = """sources:
  0, 1                       webcam index (the default is 0)
  photo.jpg  photos/         an image, or every image and video in a folder
  'photos/**/*.jpg'          a glob (quote it so the shell does not expand it)
  clip.mp4                   a video file
  rtsp://host/cam  http://host/stream.ts   a network stream (reconnects when it drops)
  list.txt                   a file listing any of these, one per line (relative paths in it are read
                             from the list's own folder, not from where you run detect.py)

examples:
  python detect.py --source samples/images/astronaut.jpg     # writes runs/detect/exp/astronaut.jpg
  python detect.py --source 0 --show                         # webcam in a window; q or Esc quits
  python detect.py --source clip.mp4 --save-csv --save-json  # every detection as a record
  python detect.py --source photos/ --save-txt               # YOLO labels labelImg opens, to correct and retrain
  python detect.py --weights models/best.pt --conf 0.4 --classes 1 2   # only faces without or with a wrong mask

monitoring (--track, --line, --alert):
  Each face gets an ID that follows it through the view. Its verdict is a confidence-weighted vote
  over the frames of its track (the class with the largest sum of confidences), given once the track
  has --min-frames frames; shorter tracks are not counted as people. people.csv gets a row per person
  as they leave the view, with their best crop under people/; alerts go to alerts/ and alerts.jsonl
  (with delivery status); report.html sums up the run and opens offline.
  --line 'in' is a crossing from the left to the right of the line seen walking from X1,Y1 to X2,Y2
  (for a line drawn left to right: moving down the image).
  python detect.py --source door.mp4 --track --line 0,0.5,1,0.5 --alert without_mask --alert-url http://host/hook

Ctrl-C stops at any time and keeps complete outputs (playable video, full CSV/JSON; with --track a consistent
people.csv, alerts.jsonl and report.html).

exit status:
  0    every input was read to its end
  1    done, but some inputs could not be read or a live source stopped sending (each named above the summary)
  2    nothing was done: a bad argument, or no input could be read (one error line says why)
  130  stopped by Ctrl-C or SIGTERM; everything written so far is complete
"""


def main(argv: list[str] | None = None) -> int:
    p = make_parser("detect.py", "Detect who wears a mask, who does not, and who wears it wrong. Boxes with class and\n"
                    "confidence after NMS; annotated results under runs/detect/expN.", EXAMPLES)
    p.add_argument("--source", default="0", help="what to read (see 'sources' below)")
    p.add_argument("--weights", default=None,
                   help="model .onnx (ONNX Runtime, fastest on CPU) or .pt (PyTorch); default: models/best.onnx, else models/best.pt")
    p.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=IMGSZ, default=None,
                   help="inference size in pixels (default: the model's own; a fixed-size .onnx only takes its own)")
    p.add_argument("--conf", "--conf-thres", dest="conf", type=CONFIDENCE, default=0.25, help="minimum confidence to keep a box")
    p.add_argument("--iou", "--iou-thres", dest="iou", type=IOU, default=0.45,
                   help="NMS IoU threshold: of two boxes of one class overlapping more than this, only the better is kept")
    p.add_argument("--max-det", type=number(int, 1, 100_000), default=1000, help="most boxes kept per image")
    p.add_argument("--classes", type=COUNT, nargs="+", default=None, help="keep only these class ids (e.g. --classes 1 2)")
    p.add_argument("--agnostic-nms", action="store_true", help="NMS across classes (one box per face whatever its class)")
    p.add_argument("--device", default=None, help="'cpu', or a CUDA device such as '0' (default: the GPU if there is one)")
    p.add_argument("--half", action="store_true", help="FP16 inference (CUDA with .pt only)")
    p.add_argument("--show", "--view-img", dest="show", action="store_true",
                   help="show results in a window with FPS and counts (on by itself for a webcam when there is a screen)")
    p.add_argument("--nosave", action="store_true", help="do not save annotated images/videos")
    p.add_argument("--save-txt", action="store_true", help="save YOLO labels (+ classes.txt) to <run>/labels, openable in labelImg")
    p.add_argument("--save-conf", action="store_true", help="add the confidence to --save-txt lines (labelImg cannot open those)")
    p.add_argument("--save-crop", action="store_true", help="save each detected face to <run>/crops/<class>/")
    p.add_argument("--save-csv", action="store_true", help="write every detection to <run>/predictions.csv as it is made")
    p.add_argument("--save-json", action="store_true", help="write every detection to <run>/predictions.json as it is made")
    p.add_argument("--project", default=str(PROJECT_ROOT / "runs" / "detect"), help="where run folders go")
    p.add_argument("--name", default="exp", help="run folder name (exp, exp2, ... if it exists)")
    p.add_argument("--exist-ok", action="store_true", help="reuse the run folder instead of numbering a new one")
    p.add_argument("--line-thickness", type=number(int, 1, 100), default=None, help="box line width in pixels (default: by image size)")
    p.add_argument("--hide-labels", action="store_true", help="draw boxes without class names")
    p.add_argument("--hide-conf", action="store_true", help="draw class names without confidences")
    p.add_argument("--vid-stride", type=POSITIVE_INT, default=1, help="video files: detect on every n-th frame")
    p.add_argument("--stream-timeout", type=SECONDS, default=30.0,
                   help="live sources: give up after this many seconds without a frame (0 = keep reconnecting forever)")
    p.add_argument("--max-pixels", type=number(int, 1, 1 << 30), default=MAX_PIXELS,
                   help="skip (and report) images larger than this many pixels, measured from the file header "
                        "before decoding (at most 2^30, OpenCV's own ceiling)")
    p.add_argument("--quiet", action="store_true", help="no line per frame, only the summary")
    m = p.add_argument_group("monitoring: people, not frames (see 'monitoring' below)")
    m.add_argument("--track", action="store_true",
                   help="follow each face with an ID (ByteTrack) and count people: people.csv, people/, report.html")
    m.add_argument("--min-frames", type=POSITIVE_INT, default=MIN_FRAMES,
                   help="frames a track needs before it counts as a person and gets a verdict")
    m.add_argument("--line", default=None, metavar="X1,Y1,X2,Y2",
                   help="count people crossing this line, each direction, by verdict (pixels, or fractions 0-1 of the frame)")
    m.add_argument("--alert", nargs="+", default=None, metavar="CLASS",
                   help="alert once per person whose verdict is one of these classes, e.g. --alert without_mask mask_weared_incorrect")
    m.add_argument("--alert-after", type=SECONDS, default=ALERT_AFTER_S,
                   help="seconds the verdict must have held before the alert (video time; image folders count 25 images a second)")
    m.add_argument("--alert-url", default=None, metavar="URL",
                   help="POST each alert as JSON to this http(s) webhook, from a background queue with retries")
    args = p.parse_args(argv)

    # `kill` (SIGTERM) stops as cleanly as Ctrl-C: outputs are closed, not cut off.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    quiet_opencv_logs()  # our one-line messages, not OpenCV's internals, on stderr
    summary = run(**vars(args))
    print()
    for line in summary.lines():
        print(line)
    return summary.exit_status
