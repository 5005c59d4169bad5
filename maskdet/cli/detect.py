"""python detect.py: detect masks on images, folders, videos, webcams and streams."""

from __future__ import annotations

import signal

from maskdet.cli import CONFIDENCE, COUNT, IMGSZ, IOU, SECONDS, make_parser, number, run_name
from maskdet.settings import (
    MAX_ALERT_AFTER_S,
    MAX_MIN_FRAMES,
    PRIVACY_LEVELS,
    DetectionSettings,
    MonitoringSettings,
    OutputSettings,
    PrivacySettings,
    SourceSettings,
)

EXAMPLES = """sources:
  0, 1                       webcam index (the default is 0)
  photo.jpg  photos/         an image, or every image and video directly in a folder
  'photos/**/*.jpg'          a glob (quote it so the shell does not expand it)
  clip.mp4                   a video file
  https://host/photo.jpg  https://host/clip.mp4   an image or video file behind a URL, read once
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
  as they leave the view (their best crop under people/ with --privacy off only); alerts go to alerts/ and alerts.jsonl
  (with delivery status); report.html sums up the run and opens offline.
  --line 'in' is a crossing from the left to the right of the line seen walking from X1,Y1 to X2,Y2
  (for a line drawn left to right: moving down the image).
  python detect.py --source door.mp4 --track --line 0,0.5,1,0.5 --alert without_mask --alert-url http://host/hook

privacy (--privacy, --retain):
  Monitoring blurs every face the model found (box enlarged for hair and jaw) before any image is written
  or sent, and writes no face crop; a face the model misses is not blurred. --privacy counts keeps only
  counts.csv/json (people by verdict per --period) and a report without pictures: no image, video, crop or
  row per person. --retain 72h deletes frames, videos, reports and table rows of monitoring runs older than
  that, inside run folders detect.py made only.
  python detect.py --source rtsp://host/cam --track --privacy counts --period 20m --retain 72h

Ctrl-C stops at any time and keeps complete outputs (playable video, full CSV/JSON; with --track a consistent
people.csv, alerts.jsonl and report.html).

exit status:
  0    every input was read to its end
  1    done, but some inputs could not be read or a live source stopped sending (each named above the summary)
  2    nothing was done: a bad argument, or no input could be read (one error line says why)
  130  stopped by Ctrl-C or SIGTERM; everything written so far is complete
"""


def run(**keywords):
    """maskdet.pipeline.runner.run, imported only once the arguments are parsed (--help stays light)."""
    from maskdet.pipeline.runner import run as run_detect

    return run_detect(**keywords)


def quiet_opencv_logs() -> None:
    from maskdet.inference.sources import quiet_opencv_logs as quiet

    quiet()


def alert_url(text: str) -> str:
    """An argparse `type` for --alert-url: an http(s) URL whose port is in range, checked before anything runs."""
    import argparse

    from maskdet.errors import UserError
    from maskdet.monitoring.webhook import check_url

    try:
        return check_url(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser():
    """detect.py's flags; every default is the Settings dataclasses' (maskdet/settings.py)."""
    det, mon, src, out = DetectionSettings(), MonitoringSettings(), SourceSettings(), OutputSettings()
    priv = PrivacySettings()
    p = make_parser("detect.py", "Detect who wears a mask, who does not, and who wears it wrong. Boxes with class and\n"
                    "confidence after NMS; annotated results under runs/detect/expN.", EXAMPLES)
    p.add_argument("--source", default=src.source, help="what to read (see 'sources' below)")
    p.add_argument("--weights", default=det.weights,
                   help="model: an OpenVINO folder (*_openvino_model/, INT8 or fp32; fastest on CPU), .onnx (ONNX Runtime) or .pt "
                        "(PyTorch); default: models/best_int8_openvino_model (when openvino is installed), else "
                        "models/best.onnx, else models/best.pt")
    p.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=IMGSZ, default=det.imgsz,
                   help="inference size in pixels (default: the model's own; the shipped INT8 model and a fixed-size .onnx "
                        "only take their own: export.py --imgsz makes another)")
    p.add_argument("--conf", "--conf-thres", dest="conf", type=CONFIDENCE, default=det.conf, help="minimum confidence to keep a box")
    p.add_argument("--iou", "--iou-thres", dest="iou", type=IOU, default=det.iou,
                   help="NMS IoU threshold: of two boxes of one class overlapping more than this, only the better is kept")
    p.add_argument("--max-det", type=number(int, 1, 100_000), default=det.max_det, help="most boxes kept per image")
    p.add_argument("--classes", type=COUNT, nargs="+", default=det.classes,
                   help="report only these class ids (e.g. --classes 1 2); every face is still found (and blurred) first, "
                        "so with --agnostic-nms a face is reported only where its best class is one of these")
    p.add_argument("--agnostic-nms", action="store_true", help="NMS across classes (one box per face whatever its class)")
    p.add_argument("--device", default=det.device, help="'cpu', or a CUDA device such as '0' (default: the GPU if there is one)")
    p.add_argument("--half", action="store_true", help="FP16 inference (CUDA with .pt only)")
    p.add_argument("--tile", type=int, default=det.tile, metavar="PX",
                   help="sliced inference for frames much larger than the model's input (1080p, 4K): also run the model "
                        "on overlapping PX x PX tiles and merge, so small faces keep their size (480 finds 20-px faces "
                        "in 1080p; costs about one inference per tile); 0 = off")
    p.add_argument("--tile-overlap", type=float, default=det.tile_overlap, metavar="F",
                   help="share of a tile shared with its neighbour, at least a face's width (0 up to, not including, 0.9)")
    p.add_argument("--augment", action="store_true",
                   help="test-time augmentation: also run the model on the mirror image and fuse the two views' boxes "
                        "(a face seen in both ranks above one seen once: higher mAP, see models/README.md); costs a "
                        "second inference per frame")
    p.add_argument("--second-stage", default=det.second_stage, metavar="MODEL",
                   help="a classifier of face crops that gives each box's class a second opinion (an .onnx made by "
                        "train_second_stage.py, with its second_stage.json); default: models/second_stage.onnx when "
                        "there is one and the detector is a shipped one (its weight was chosen for them); off = the "
                        "detector's classes alone")
    p.add_argument("--show", "--view-img", dest="show", action="store_true",
                   help="show results in a window with FPS and counts (on by itself for a webcam when there is a screen)")
    p.add_argument("--nosave", action="store_true", help="do not save annotated images/videos")
    p.add_argument("--save-txt", action="store_true", help="save YOLO labels (+ classes.txt) to <run>/labels, openable in labelImg")
    p.add_argument("--save-conf", action="store_true", help="add the confidence to --save-txt lines (labelImg cannot open those)")
    p.add_argument("--save-crop", action="store_true", help="save each detected face to <run>/crops/<class>/")
    p.add_argument("--save-csv", action="store_true", help="write every detection to <run>/predictions.csv as it is made")
    p.add_argument("--save-json", action="store_true", help="write every detection to <run>/predictions.json as it is made")
    p.add_argument("--project", default=str(out.project), help="where run folders go")
    p.add_argument("--name", type=run_name, default=out.name, help="run folder name (exp, exp2, ... if it exists)")
    p.add_argument("--exist-ok", action="store_true", help="reuse the run folder instead of numbering a new one")
    p.add_argument("--line-thickness", type=number(int, 1, 100), default=out.line_thickness, help="box line width in pixels (default: by image size)")
    p.add_argument("--hide-labels", action="store_true", help="draw boxes without class names")
    p.add_argument("--hide-conf", action="store_true", help="draw class names without confidences")
    p.add_argument("--vid-stride", type=number(int, 1, 10_000), default=src.vid_stride, help="video files: detect on every n-th frame")
    p.add_argument("--stream-timeout", type=SECONDS, default=src.stream_timeout,
                   help="live sources: give up after this many seconds without a frame (0 = keep reconnecting forever)")
    p.add_argument("--max-pixels", type=number(int, 1, 1 << 30), default=src.max_pixels,
                   help="skip (and report) images, video files and streams whose frames are larger than this many "
                        "pixels, measured from the file or container header before decoding where it says (at most "
                        "2^30, OpenCV's own ceiling)")
    p.add_argument("--quiet", action="store_true", help="no line per frame, only the summary")
    m = p.add_argument_group("monitoring: people, not frames (see 'monitoring' below)")
    m.add_argument("--track", action="store_true",
                   help="follow each face with an ID (ByteTrack) and count people: people.csv, people/, report.html")
    m.add_argument("--min-frames", type=number(int, 1, MAX_MIN_FRAMES), default=mon.min_frames,
                   help=f"frames a track needs before it counts as a person and gets a verdict (1 to {MAX_MIN_FRAMES:,})")
    m.add_argument("--line", default=mon.line, metavar="X1,Y1,X2,Y2",
                   help="count people crossing this line, each direction, by verdict (pixels, or fractions 0-1 of the frame)")
    m.add_argument("--alert", nargs="+", default=mon.alert, metavar="CLASS",
                   help="alert once per person whose verdict is one of these classes, e.g. --alert without_mask mask_weared_incorrect")
    m.add_argument("--alert-after", type=number(float, 0, MAX_ALERT_AFTER_S), default=mon.alert_after,
                   help="seconds the verdict must have held before the alert (video time; image folders count 25 images "
                        f"a second; 0 to {MAX_ALERT_AFTER_S:g}, a day)")
    m.add_argument("--alert-url", type=alert_url, default=mon.alert_url, metavar="URL",
                   help="POST each alert as JSON to this http(s) webhook (port 1 to 65535), from a background queue with "
                        "retries; redirects are not followed (a 3xx leaves the alert undelivered: give the final URL)")
    v = p.add_argument_group("privacy (see 'privacy' below)")
    v.add_argument("--privacy", dest="privacy_level", choices=PRIVACY_LEVELS, default=priv.level,
                   help="off: keep faces; blur: blur every face found in every image written or sent, no face crops; "
                        "counts: counts per period only, no image, no person (default: blur when monitoring, else off)")
    v.add_argument("--retain", dest="privacy_retain", default=priv.retain, metavar="DURATION",
                   help="delete what monitoring runs wrote in their own run folders under --project once older "
                        "than this (e.g. 72h, 30m, 7d, or 3600 seconds), at the start and while running; never a folder "
                        "of yours (--exist-ok into one is refused)")
    v.add_argument("--period", dest="privacy_period", default=priv.period, metavar="DURATION",
                   help="--privacy counts: the length of a row of counts, whole seconds from 2 minutes (a shorter row with one "
                        "person in it is that person) to 7 days (default 20m; e.g. 1h, or 900 seconds)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    # `kill` (SIGTERM) stops as cleanly as Ctrl-C: outputs are closed, not cut off.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    quiet_opencv_logs()  # our one-line messages, not OpenCV's internals, on stderr
    summary = run(**vars(args))
    print()
    for line in summary.lines():
        print(line)
    return summary.exit_status
