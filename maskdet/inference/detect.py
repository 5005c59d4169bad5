"""The detection pipeline: source -> detector -> annotator -> sinks (and a window).

`run()` is what `python detect.py` calls, with the same arguments, so Python code can
call it too:

    from maskdet.inference.detect import run
    summary = run(source="photos/", save_csv=True)
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from maskdet.config import PROJECT_ROOT
from maskdet.errors import UserError
from maskdet.fileio import next_run_dir
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.detectors import DetectSettings, load_detector
from maskdet.inference.display import display_problem
from maskdet.inference.sinks import CropSink, CsvSink, JsonSink, MediaSink, Sink, YoloTxtSink
from maskdet.inference.sources import MAX_PIXELS, InputProblem, expand_source, iter_frames
from maskdet.inference.visualize import Annotator, class_color, draw_overlay
from maskdet.interrupts import interrupts_held
from maskdet.monitoring.people import ALERT_AFTER_S, MIN_FRAMES

MODELS_DIR = PROJECT_ROOT / "models"
# The fast path first: ONNX Runtime needs no torch and is quicker on a CPU.
DEFAULT_WEIGHTS_ORDER = (MODELS_DIR / "best.onnx", MODELS_DIR / "best.pt")
STAGES = ("read", "preprocess", "inference", "nms", "draw", "write", "show")


def default_weights() -> Path:
    for path in DEFAULT_WEIGHTS_ORDER:
        if path.exists():
            return path
    raise UserError(f"no model in {MODELS_DIR}: pass --weights, or train one with python train.py")


@dataclass
class DetectSummary:
    save_dir: Path
    frames: int = 0
    sources: int = 0
    detections: Counter = field(default_factory=Counter)
    stage_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    wall_s: float = 0.0
    max_latency_ms: float = 0.0
    saved: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # inputs skipped or stopped, each as it was reported
    interrupted: bool = False
    monitoring: list[str] = field(default_factory=list)  # --track: people, line and alert totals

    @property
    def exit_status(self) -> int:
        """0: every input read to its end; 1: some were skipped or stopped sending; 130: interrupted
        (2, nothing could be done at all, comes from the one-line error instead of a summary)."""
        return 130 if self.interrupted else 1 if self.problems else 0

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def lines(self) -> list[str]:
        total = sum(self.stage_ms.values()) or 1.0
        per_class = ", ".join(f"{n} {name}" for name, n in self.detections.most_common()) or "none"
        breakdown = ", ".join(f"{k} {v / max(self.frames, 1):.1f}ms ({100 * v / total:.0f}%)"
                              for k, v in self.stage_ms.items() if v > 0)
        out = [f"{'interrupted: ' if self.interrupted else ''}{self.frames} frames from {self.sources} inputs in "
               f"{self.wall_s:.1f} s: {self.fps:.1f} FPS",
               f"detections: {per_class}",
               f"time per frame: {breakdown}"]
        if self.max_latency_ms:
            out.append(f"live: worst capture-to-result delay {self.max_latency_ms:.0f} ms")
        if self.problems:
            out.append(f"problems: {len(self.problems)} of {self.sources} inputs skipped or stopped early (listed above)")
        out += self.monitoring
        out.append(f"results saved to {self.save_dir}")
        return out


class Window:
    """An OpenCV window with FPS and per-class counts; 'q' or Esc (or closing it) stops."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        self.opened: set[str] = set()
        self.fps = 0.0
        self.last = time.perf_counter()

    def show(self, title: str, image: np.ndarray, det: Detections, people: list | None = None) -> bool:
        now = time.perf_counter()
        dt, self.last = now - self.last, now
        self.fps = 1 / dt if self.fps == 0 and dt > 0 else 0.9 * self.fps + 0.1 / max(dt, 1e-6)
        image = image.copy()  # the sinks (a background video writer) may still hold the annotated frame
        counts = det.counts()
        lines = [(f"FPS {self.fps:.1f}", (255, 255, 255))]
        lines += people if people is not None else [(f"{name}: {counts.get(name, 0)}", class_color(i, self.names))
                                                    for i, name in enumerate(self.names)]
        draw_overlay(image, lines)
        if title not in self.opened:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)  # no toolbar: 1:1 pixels
            cv2.resizeWindow(title, image.shape[1], image.shape[0])
            self.opened.add(title)
        cv2.imshow(title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        return cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) >= 1

    def close(self) -> None:
        if self.opened:
            cv2.destroyAllWindows()
            cv2.waitKey(1)


def frame_line(frame: Frame, det: Detections, ms: float, latency_ms: float | None) -> str:
    """'image 1/3 a.jpg: 2 with_mask, 1 without_mask, 31.5ms' as YOLOv5 prints it."""
    where = {"image": f"image {frame.position} {frame.source}",
             "video": f"video {frame.position} (frame {frame.index + 1}/{frame.total or '?'}) {frame.source}",
             "live": f"{frame.name} frame {frame.index}"}[frame.kind]
    lag = f" (delay {latency_ms:.0f}ms)" if latency_ms is not None else ""
    return f"{where}: {det.describe()}, {ms:.1f}ms{lag}"


def run(
    source: str = "0", weights: str | Path | None = None, imgsz: int | None = None, conf: float = 0.25,
    iou: float = 0.45, max_det: int = 1000, classes: list[int] | None = None, agnostic_nms: bool = False,
    device: str | None = None, half: bool = False, show: bool = False, nosave: bool = False,
    save_txt: bool = False, save_conf: bool = False, save_crop: bool = False, save_csv: bool = False,
    save_json: bool = False, project: str | Path = PROJECT_ROOT / "runs" / "detect", name: str = "exp",
    exist_ok: bool = False, line_thickness: int | None = None, hide_labels: bool = False, hide_conf: bool = False,
    vid_stride: int = 1, stream_timeout: float = 30.0, quiet: bool = False, log=None,
    track: bool = False, line: str | None = None, min_frames: int = MIN_FRAMES, alert: list[str] | None = None,
    alert_after: float = ALERT_AFTER_S, alert_url: str | None = None, max_pixels: int = MAX_PIXELS,
) -> DetectSummary:
    """Detect masks on every frame of `source` and write what was asked for; returns a summary."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if vid_stride < 1:
        raise UserError("--vid-stride must be 1 or more")
    problem = display_problem("--show") if show else None
    if problem:
        raise UserError(f"{problem}; or leave out --show")
    settings = DetectSettings(conf, iou, max_det, tuple(classes) if classes is not None else None, agnostic_nms)
    detector = load_detector(weights or default_weights(), settings, imgsz, device, half)
    if classes is not None and any(not 0 <= c < len(detector.names) for c in classes):
        raise UserError(f"--classes must be ids 0..{len(detector.names) - 1} ({', '.join(detector.names)})")
    monitor = None
    if track or line or alert:  # --line and --alert count people: they need the tracker
        from maskdet.monitoring.monitor import Monitor

        monitor = Monitor.from_args(detector.names, line, min_frames, alert, alert_after, alert_url)
    notes: list[str] = []  # why entries were skipped: part of the one error line when nothing is left
    specs = expand_source(str(source), notes.append)
    if not specs:
        why = "; ".join(note.removeprefix("skipped: ") for note in notes)
        raise UserError(f"nothing to read from --source {source}" + (f" ({why})" if why else ""))
    for note in notes:
        log(note)
    problems = [note for note in notes if note.startswith("skipped: ")]
    if not show and any(spec.kind == "webcam" for spec in specs) and display_problem("--show") is None:
        show = True  # as YOLOv5 does: a webcam is for watching
        log("note: showing the webcam in a window (q or Esc quits)")
    existed = exist_ok and (Path(project) / name).exists()
    save_dir = next_run_dir(project, name, exist_ok)
    summary = DetectSummary(save_dir, sources=len(specs) + len(problems), problems=problems)
    annotator = Annotator(detector.names, line_thickness, hide_labels, hide_conf)
    window = Window(detector.names) if show else None
    draw = show or not nosave
    start = time.perf_counter()
    with ExitStack() as stack:
        stack.push(_removed_if_nothing_was_done(summary, existed))  # runs last, once the sinks have closed
        sinks: list[Sink] = []
        if not nosave:
            media = stack.enter_context(MediaSink(save_dir))
            sinks.append(media)
        if save_txt:
            sinks.append(stack.enter_context(YoloTxtSink(save_dir / "labels", detector.names, save_conf)))
        if save_crop:
            sinks.append(stack.enter_context(CropSink(save_dir / "crops")))
        if save_csv:
            sinks.append(stack.enter_context(CsvSink(save_dir / "predictions.csv", track=monitor is not None)))
        if save_json:
            sinks.append(stack.enter_context(JsonSink(save_dir / "predictions.json")))
        if monitor:
            sinks += monitor.open_sinks(stack, save_dir, f"maskdet: {source}", log)
        if window:
            stack.callback(window.close)
        frames = iter_frames(specs, vid_stride, log, stream_timeout, max_pixels)
        stack.callback(frames.close)
        try:
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                if isinstance(frame, InputProblem):
                    log(frame.message)
                    summary.problems.append(frame.message)
                    continue
                t1 = time.perf_counter()
                det = detector(frame.image)
                if monitor:
                    det = monitor(frame, det)
                t2 = time.perf_counter()
                annotated = annotator(frame.image.copy(), det) if draw else None
                if monitor and annotated is not None:
                    monitor.annotate(annotated)
                t3 = time.perf_counter()
                with interrupts_held():  # a frame reaches every sink or none
                    for sink in sinks:
                        sink.write(frame, det, annotated)
                t4 = time.perf_counter()
                keep_going = (window.show(f"maskdet: {frame.source}", annotated, det, monitor.overlay() if monitor else None)
                              if window else True)
                t5 = time.perf_counter()

                summary.frames += 1
                summary.detections.update(det.counts())
                stage = summary.stage_ms
                stage["read"] += (t1 - t0) * 1e3 if frame.kind != "live" else 0.0  # live waits are not work
                for key in ("preprocess", "inference", "nms"):
                    stage[key] += det.timings_ms.get(key, 0.0)
                stage["draw"] += (t3 - t2) * 1e3
                stage["write"] += (t4 - t3) * 1e3
                stage["show"] += (t5 - t4) * 1e3
                latency = (t4 - frame.captured_at) * 1e3 if frame.kind == "live" else None
                if latency is not None:
                    summary.max_latency_ms = max(summary.max_latency_ms, latency)
                if not quiet:
                    print(frame_line(frame, det, (t2 - t1) * 1e3, latency), flush=True)
                if not keep_going:
                    log("stopped from the window")
                    break
        except KeyboardInterrupt:
            summary.interrupted = True
            if monitor:
                monitor.interrupted()
        summary.wall_s = time.perf_counter() - start
        if not nosave:
            summary.saved = list(media.saved)
        if summary.frames == 0 and summary.problems and not summary.interrupted:
            raise UserError(f"none of the {summary.sources} inputs could be read (see above)")
    if monitor:
        summary.monitoring = monitor.lines()
    return summary


def _removed_if_nothing_was_done(summary: DetectSummary, existed: bool):
    """An ExitStack exit callback: a run that fails before its first frame (an unreadable image, an absent
    webcam) removes the run folder it made, so it leaves nothing behind and does not move the numbering of
    later runs. A folder that was there before (--exist-ok) is never removed."""
    def on_exit(exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, UserError) and summary.frames == 0 and not existed:
            shutil.rmtree(summary.save_dir, ignore_errors=True)
        return False
    return on_exit
