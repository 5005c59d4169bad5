"""detect.py's run: sources -> the per-frame step (Pipeline) -> sinks (and a window), with a summary.

It sits above maskdet.inference and maskdet.monitoring (it strings their parts together), so neither of
them imports it. `run_settings(Settings)` is the entry point; `run(**keywords)` takes detect.py's flag
names, as `from maskdet.inference.detect import run` always did.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from maskdet.errors import UserError, printable
from maskdet.fileio import next_run_dir
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.display import display_problem
from maskdet.inference.sinks import CropSink, CsvSink, JsonSink, MediaSink, Sink, YoloTxtSink
from maskdet.inference.sources import InputProblem, SourceSpec, expand_source, iter_frames
from maskdet.inference.window import Window
from maskdet.interrupts import interrupts_held
from maskdet.monitoring.monitor import Monitor
from maskdet.pipeline.step import Pipeline
from maskdet.privacy.retention import MARKER, Retention, RunMarker
from maskdet.settings import DetectionSettings, MonitoringSettings, Settings

TIMED = ("read", "preprocess", "inference", "nms", "blur", "draw", "write", "show")  # the summary's time per frame


@dataclass
class DetectSummary:
    save_dir: Path
    frames: int = 0
    sources: int = 0
    detections: Counter = field(default_factory=Counter)
    stage_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMED, 0.0))
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


def frame_line(frame: Frame, det: Detections, ms: float, latency_ms: float | None) -> str:
    """'image 1/3 a.jpg: 2 with_mask, 1 without_mask, 31.5ms' as YOLOv5 prints it."""
    where = {"image": f"image {frame.position} {frame.source}",
             "video": f"video {frame.position} (frame {frame.index + 1}/{frame.total or '?'}) {frame.source}",
             "live": f"{frame.name} frame {frame.index}"}[frame.kind]
    lag = f" (delay {latency_ms:.0f}ms)" if latency_ms is not None else ""
    return printable(f"{where}: {det.describe()}, {ms:.1f}ms{lag}")  # a file name from outside, as it may be


def run(log=None, **keywords) -> DetectSummary:
    """detect.py with its flag names as keywords (Settings.from_flat), e.g. run(source="photos/", save_csv=True)."""
    return run_settings(Settings.from_flat(**keywords), log)


def open_sinks(stack: ExitStack, settings: Settings, pipeline: Pipeline, save_dir: Path, log,
               nosave: bool) -> tuple[list[Sink], MediaSink | None]:
    """The sinks the output settings ask for, entered on `stack` so they close (in reverse) however the run ends."""
    out = settings.output
    sinks: list[Sink] = []
    media = None
    if not nosave:
        media = stack.enter_context(MediaSink(save_dir))
        sinks.append(media)
    if out.save_txt:
        sinks.append(stack.enter_context(YoloTxtSink(save_dir / "labels", pipeline.names, out.save_conf)))
    if out.save_crop:
        sinks.append(stack.enter_context(CropSink(save_dir / "crops")))
    if out.save_csv:
        sinks.append(stack.enter_context(CsvSink(save_dir / "predictions.csv", track=pipeline.monitor is not None)))
    if out.save_json:
        sinks.append(stack.enter_context(JsonSink(save_dir / "predictions.json")))
    if pipeline.monitor is not None:
        sinks += pipeline.monitor.open_sinks(stack, save_dir, f"maskdet: {settings.source.source}", log)
    return sinks, media


def run_settings(settings: Settings, log=None) -> DetectSummary:
    """Detect masks on every frame of the source and write what was asked for; returns a summary."""
    log = log or (lambda msg: print(printable(msg), file=sys.stderr, flush=True))  # file names come from outside
    src, out = settings.source, settings.output
    if src.vid_stride < 1:
        raise UserError("--vid-stride must be 1 or more")
    check_flags_that_need_another(settings)
    show, nosave = check_privacy(settings)
    problem = display_problem("--show") if show else None
    if problem:
        raise UserError(f"{problem}; or leave out --show")
    pipeline = Pipeline(settings)
    notes: list[str] = []  # why entries were skipped: part of the one error line when nothing is left
    outputs_named = not nosave or out.save_txt or out.save_crop or pipeline.monitor is not None
    specs = expand_source(str(src.source), notes.append, outputs_named)
    if not specs:
        why = "; ".join(note.removeprefix("skipped: ") for note in notes)
        raise UserError(f"nothing to read from --source {src.source}" + (f" ({why})" if why else ""))
    for note in notes:
        log(note)
    problems = [note for note in notes if note.startswith("skipped: ")]
    level = pipeline.privacy.level
    if pipeline.monitor is not None and level == "off":
        log("warning: --privacy off: this monitoring run keeps every face (crops, frames, videos); "
            "--privacy blur blurs them, --privacy counts keeps counts only")
    if not show and level != "counts" and any(spec.kind == "webcam" for spec in specs) and display_problem("--show") is None:
        show = True  # as YOLOv5 does: a webcam is for watching
        log("note: showing the webcam in a window (q or Esc quits)")
    existed = out.exist_ok and (Path(out.project) / out.name).exists()
    markable = True  # whether this run's folder may hold the marker that lets --retain sweep it
    if existed and pipeline.monitor is not None:
        refuse_an_earlier_monitoring_run(Path(out.project) / out.name)
        markable = may_mark(Path(out.project) / out.name, settings.privacy.retain_s is not None, log)
    if existed:
        refuse_a_run_folder_that_holds_the_inputs(Path(out.project) / out.name, specs)
    made_from = first_missing_folder(Path(out.project))  # removed again with the run folder if nothing is done
    save_dir = next_run_dir(out.project, out.name, out.exist_ok)
    summary = DetectSummary(save_dir, sources=len(specs) + len(problems), problems=problems)
    window = Window(pipeline.names) if show else None
    draw = show or not nosave
    monitor = pipeline.monitor
    retention = None
    marker = RunMarker(save_dir, level) if monitor and markable else None
    if marker is not None:
        marker.update()  # what --retain may sweep: only folders that hold this marker, only the files it lists
    start = time.perf_counter()
    with ExitStack() as stack:
        stack.push(_removed_if_nothing_was_done(summary, existed, made_from))  # runs last, once the sinks have closed
        if marker is not None:
            stack.callback(lambda: save_dir.is_dir() and marker.update(running=False))
        sinks, media = open_sinks(stack, settings, pipeline, save_dir, log, nosave)
        if marker is not None:
            marker.update()  # the tables the sinks just made: listed before anything else can happen
        if monitor and marker is not None and settings.privacy.retain_s is not None:
            retention = Retention(Path(out.project), settings.privacy.retain_s, save_dir, monitor.prune, log,
                                  marker.update)
            retention(force=True)  # at each start: what earlier runs left past the duration
        if window:
            stack.callback(window.close)
        line_sizes: set[tuple[int, int]] = set()  # frame sizes the counting line was checked against
        frames = iter_frames(specs, src.vid_stride, log, src.stream_timeout, src.max_pixels)
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
                if monitor is not None:
                    warn_once_per_size(frame, monitor, line_sizes, log)
                t1 = time.perf_counter()
                det = pipeline.process(frame)
                t2 = time.perf_counter()
                annotated = pipeline.annotate(frame, det) if draw else None
                t3 = time.perf_counter()
                with interrupts_held():  # a frame reaches every sink or none
                    for sink in sinks:
                        sink.write(frame, det, annotated)
                t4 = time.perf_counter()
                keep_going = (window.show(f"maskdet: {frame.source}", annotated, det, pipeline.overlay())
                              if window else True)
                t5 = time.perf_counter()

                summary.frames += 1
                summary.detections.update(det.counts())
                stage = summary.stage_ms
                stage["read"] += (t1 - t0) * 1e3 if frame.kind != "live" else 0.0  # live waits are not work
                for key in ("preprocess", "inference", "nms", "blur"):
                    stage[key] += det.timings_ms.get(key, 0.0)
                stage["draw"] += (t3 - t2) * 1e3
                stage["write"] += (t4 - t3) * 1e3
                stage["show"] += (t5 - t4) * 1e3
                latency = (t4 - frame.captured_at) * 1e3 if frame.kind == "live" else None
                if latency is not None:
                    summary.max_latency_ms = max(summary.max_latency_ms, latency)
                if not out.quiet:
                    print(frame_line(frame, det, (t2 - t1) * 1e3, latency), flush=True)
                if retention is not None:
                    retention()
                if marker is not None:
                    marker.keep_up()  # a run killed later still lists what it wrote until a minute before
                if not keep_going:
                    log("stopped from the window")
                    break
        except KeyboardInterrupt:
            summary.interrupted = True
            if monitor:
                monitor.interrupted()
        summary.wall_s = time.perf_counter() - start
        if media is not None:
            summary.saved = list(media.saved)
        if summary.frames == 0 and summary.problems and not summary.interrupted:
            raise UserError(f"none of the {summary.sources} inputs could be read (see above)")
    if monitor:
        summary.monitoring = monitor.lines() + (retention.lines() if retention else [])
        summary.monitoring.append(f"privacy: {level}" + PRIVACY_NOTES[level])
    return summary


def warn_once_per_size(frame: Frame, monitor: Monitor, checked: set[tuple[int, int]], log: Callable[[str], None]) -> None:
    """A --line given in pixels that misses a frame is said once for each frame size (a folder of photos of
    one camera is one size), naming the first input of that size."""
    h, w = frame.image.shape[:2]
    if (w, h) not in checked:
        checked.add((w, h))
        problem = monitor.line_problem(w, h)
        if problem:
            log(f"warning: {frame.source}: {problem}")


PRIVACY_NOTES = {"off": " (faces kept)", "blur": " (every face found was blurred before it was written)",
                 "counts": " (counts only: no image, no person)"}


# What a monitoring run writes about people: a second run's track ids start again at 1, so its rows cannot follow
# the first run's (as predictions.csv's do), and writing over them would lose them.
MONITORING_RECORDS = ("people.csv", "alerts.jsonl", "counts.csv", "counts.json", "report.html")


def refuse_an_earlier_monitoring_run(run_dir: Path) -> None:
    """--exist-ok into a folder where a monitoring run left its records: one line, nothing written."""
    found = [name for name in MONITORING_RECORDS if (run_dir / name).exists()]
    if found:
        raise UserError(f"holds an earlier monitoring run's {', '.join(found)}, which this run would replace: leave out "
                        "--exist-ok (runs are numbered) or choose another --name", run_dir)


def may_mark(run_dir: Path, retain: bool, log: Callable[[str], None]) -> bool:
    """--exist-ok into a folder that was there before: it gets the marker (which lets --retain delete what runs wrote
    in it) only when it already had one or was empty. A folder of the user's own (photos, videos, tables of theirs)
    never does: with --retain that is a one-line error, without it a note (this run's outputs there are not swept)."""
    if not run_dir.is_dir() or (run_dir / MARKER).is_file() or not any(run_dir.iterdir()):
        return True
    if retain:
        raise UserError(f"holds files and was not made by a monitoring run (it has no {MARKER}): --retain deletes only "
                        "what monitoring runs wrote in folders of their own: leave out --exist-ok (runs are numbered) or "
                        "choose another --name", run_dir)
    log(f"note: {run_dir} was not made by a monitoring run: it gets no {MARKER}, so --retain never sweeps it")
    return False


def check_flags_that_need_another(settings: Settings) -> None:
    """A flag that only means something beside another one is a one-line error without it: ignored, it would
    let the user believe it took effect. (--alert-url without --alert: the monitor's own check.)"""
    det, out, mon = settings.detection, settings.output, settings.monitoring
    if det.tile_overlap != DetectionSettings.tile_overlap and not det.tile:
        raise UserError("--tile-overlap is the overlap of --tile's tiles: add --tile PX (e.g. --tile 480)")
    if out.save_conf and not out.save_txt:
        raise UserError("--save-conf adds the confidence to --save-txt's label lines: add --save-txt")
    if mon.min_frames != MonitoringSettings.min_frames and not mon.enabled:
        raise UserError("--min-frames is the frames a track needs to count as a person: add --track")
    if mon.alert_after != MonitoringSettings.alert_after and not mon.alert:
        raise UserError("--alert-after is how long a verdict holds before its alert: add --alert CLASS")


def check_privacy(settings: Settings) -> tuple[bool, bool]:
    """Flags that would keep faces or people under the privacy level are one-line errors; returns (show, nosave)."""
    out, priv = settings.output, settings.privacy
    level = priv.resolved(settings.monitoring.enabled or priv.level == "counts")
    if level != "off" and out.save_crop:
        raise UserError(f"--save-crop writes faces: not with --privacy {level} (use --privacy off)")
    if level == "counts":
        given = [flag for flag, on in (("--show", out.show), ("--save-txt", out.save_txt), ("--save-csv", out.save_csv),
                                       ("--save-json", out.save_json)) if on]
        if given:
            raise UserError(f"--privacy counts keeps counts only: leave out {', '.join(given)}")
        return False, True  # no annotated image or video either
    if priv.period is not None:
        raise UserError("--period is the length of a row of --privacy counts")
    if priv.retain is not None and not settings.monitoring.enabled:
        raise UserError("--retain deletes the outputs of monitoring runs: add --track (or --line, --alert)")
    return out.show, out.nosave


def _removed_if_nothing_was_done(summary: DetectSummary, existed: bool, made_from: Path | None):
    """An ExitStack exit callback: a run that fails before its first frame (an unreadable image, an absent
    webcam) removes the run folder it made, and the --project folders made for it (from `made_from` down), so it
    leaves nothing behind and does not move the numbering of later runs. A folder that was there before
    (--exist-ok) is never removed."""
    def on_exit(exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, UserError) and summary.frames == 0 and not existed:
            shutil.rmtree(summary.save_dir, ignore_errors=True)
            if made_from is not None:
                outermost = made_from.resolve()
                for folder in Path(summary.save_dir).resolve().parents:
                    if not folder.is_relative_to(outermost):
                        break
                    try:
                        folder.rmdir()  # only while empty: another run may have started in it meanwhile
                    except OSError:
                        break
        return False
    return on_exit


def first_missing_folder(path: Path) -> Path | None:
    """The outermost folder of `path` that does not exist yet (the one a run would make first), or None."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def refuse_a_run_folder_that_holds_the_inputs(run_dir: Path, specs: list[SourceSpec]) -> None:
    """--exist-ok into the folder of the photos or videos being read (or one above it) would write the annotated
    images and --save-txt labels over the user's own files of the same names."""
    run_dir = run_dir.resolve()
    for spec in specs:
        if spec.kind in ("image", "video"):
            source = Path(spec.target).resolve()
            if run_dir in source.parents:
                raise UserError(f"--exist-ok into {run_dir}: it holds the inputs ({spec.target}); the annotated images "
                                "and labels would replace files of yours: give --project/--name a folder of their own")
