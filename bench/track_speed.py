#!/usr/bin/env python3
"""What --track costs next to inference: the tracker and people stage per frame, and the report.

Runs the shipped model on every frame of a video and, on the same frames, the monitoring stage
(ByteTrack + people, verdicts, line, alerts) and, once at the end, report.html; prints medians per
frame side by side. The video is a crowd: the Kaggle test photos (several faces each; --kaggle) held
for --hold frames apiece with a slow pan, or with --sample the sample photo's pan (one face: no dataset
needed, and lighter figures).

    python bench/track_speed.py                    # models/best.onnx, 200 frames
    python bench/track_speed.py --frames 100 --json bench/track_speed.json
    python bench/track_speed.py --kaggle path/to/kaggle-facemask
    python bench/track_speed.py --sample           # without the dataset
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import add_kaggle_arg, cpu_name, kaggle_split, read_photo, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402
from maskdet.inference.detections import Frame  # noqa: E402
from maskdet.inference.detectors import DetectSettings, load_detector  # noqa: E402
from maskdet.monitoring.monitor import Monitor  # noqa: E402
from maskdet.monitoring.report import render  # noqa: E402

SIZE = (640, 480)


def crowd_frames(kaggle: Path, names: list[str], frames: int, hold: int) -> list[np.ndarray]:
    """Kaggle test photos, each panned slowly for `hold` frames (faces move a few pixels a frame)."""
    if not names:
        raise UserError("splits/test.txt lists no photos", kaggle)
    out = []
    for k in range(-(-frames // hold)):
        photo = read_photo(kaggle / "images" / f"{Path(names[k % len(names)]).stem}.png")
        photo = cv2.resize(photo, (SIZE[0] + 4 * hold, SIZE[1]))
        out += [photo[:, 4 * i:4 * i + SIZE[0]].copy() for i in range(hold)]
    return out[:frames]


def sample_frames(frames: int) -> list[np.ndarray]:
    spec = importlib.util.spec_from_file_location("detect_speed", ROOT / "bench" / "detect_speed.py")
    detect_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(detect_speed)  # its make_video: the pan over the sample photo

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pan.mp4"
        detect_speed.make_video(path, frames, SIZE)
        cap = cv2.VideoCapture(str(path))
        out = []
        while (ok_image := cap.read())[0]:
            out.append(ok_image[1])
        cap.release()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--weights", default=str(ROOT / "models" / "best.onnx"), help="model to run (.onnx or .pt)")
    parser.add_argument("--frames", type=number(int, 1, 100_000), default=200, help="frames to time")
    parser.add_argument("--hold", type=number(int, 1, 1000), default=25, help="frames each Kaggle photo stays in view")
    add_kaggle_arg(parser, "its splits/test.txt photos make the crowd")
    parser.add_argument("--sample", action="store_true",
                        help="pan over the sample photo instead of the Kaggle photos (no dataset needed; one face, so "
                             "lighter tracking figures than a crowd's)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    # the data first (a missing dataset is said before the model loads), never a quiet stand-in for it
    names = None if args.sample else kaggle_split(args.kaggle, "test", "--kaggle", "or --sample for the sample photo")
    images = sample_frames(args.frames) if args.sample else crowd_frames(Path(args.kaggle), names, args.frames, args.hold)
    detector = load_detector(args.weights, DetectSettings())
    video = "sample photo, panned" if args.sample else "Kaggle test photos, panned"
    monitor = Monitor.from_args(detector.names, "0,0.5,1,0.5", 5, ["without_mask"], 2.0, None)
    infer_ms, track_ms, boxes = [], [], []
    for i, image in enumerate(images):
        frame = Frame(image, "bench.mp4", "bench", "video", i, i / 25, time.perf_counter(), 25.0, len(images), "1/1")
        t0 = time.perf_counter()
        det = detector(image)
        t1 = time.perf_counter()
        det = monitor(frame, det)
        t2 = time.perf_counter()
        infer_ms.append((t1 - t0) * 1e3)
        track_ms.append((t2 - t1) * 1e3)
        boxes.append(len(det))
        monitor.people.take_left(), monitor.people.take_alerts()  # what the sinks would do
    monitor.people.finish_all()
    report_ms = []
    for _ in range(3):
        t = time.perf_counter()
        html = render(monitor.people, [], {}, "bench")
        report_ms.append((time.perf_counter() - t) * 1e3)

    infer, track, report = statistics.median(infer_ms), statistics.median(track_ms), statistics.median(report_ms)
    per_frame_report = report / len(images)
    results = {"cpu": cpu_name(), "video": video, "frames": len(images), "weights": Path(args.weights).name,
               "boxes_per_frame": round(statistics.mean(boxes), 1), "people": len(monitor.people.people),
               "inference_ms": round(infer, 2), "tracking_ms": round(track, 3),
               "tracking_pct_of_frame": round(100 * track / (infer + track), 2),
               "report_ms_total": round(report, 1), "report_ms_per_frame": round(per_frame_report, 3),
               "report_kib": round(len(html) / 1024)}
    print(f"\n{results['cpu']}; {len(images)} frames {SIZE[0]}x{SIZE[1]} ({video}), {results['boxes_per_frame']} faces a frame, "
          f"{results['people']} people; medians")
    print(f"{'stage':<34}{'ms per frame':>13}{'share':>8}")
    print(f"{'inference (detector call)':<34}{infer:13.1f}{100 * infer / (infer + track):7.1f}%")
    print(f"{'tracking + people (--track)':<34}{track:13.2f}{100 * track / (infer + track):7.1f}%")
    print(f"{'report.html (once, spread)':<34}{per_frame_report:13.3f}        ({report:.0f} ms once, {results['report_kib']} KiB)")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
