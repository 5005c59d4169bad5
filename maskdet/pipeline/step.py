"""The per-frame step every entry point runs: detect.py, serve.py, prelabel.py and camera workers.

    pipeline = Pipeline(Settings(...))        # loads the model once
    det = pipeline.process(frame)              # Detections: detect -> second stage -> privacy -> track/people
    picture = pipeline.annotate(frame, det)    # boxes (and the counting line) drawn on a copy of the frame

Stages, in order (STAGES):
  1. detect        the detector (maskdet.inference.detectors), shared by every stream made with new_stream(); it
                   finds every face (--classes and --max-det are not applied yet: see `reported`)
  2. second_stage  a classifier of face crops mixing its opinion into each box's class
                   (maskdet.inference.second_stage; --second-stage off: None)
  3. privacy       maskdet.pipeline.privacy.PrivacyStage: every face found blurred in the frame (before anything
                   crops it); only then do --classes and --max-det choose the boxes reported downstream
  4. track         tracker + people, verdicts, line crossings and alerts (maskdet.monitoring), per stream
  5. annotate      boxes and labels drawn on a copy of the frame, after privacy
Sinks (files, the window, the browser) are not part of the step: the caller gives them the Detections.

One Pipeline holds one stream's state (its tracker and people). A worker serving several cameras with one
copy of the model makes one Pipeline per camera from the first: `cam2 = cam1.new_stream()`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from maskdet.errors import UserError
from maskdet.inference.augment import FlipAugmentedDetector
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.detectors import Detector, load_detector
from maskdet.inference.tiles import TiledDetector, TileSettings
from maskdet.inference.visualize import Annotator
from maskdet.models import default_weights, second_stage_model
from maskdet.monitoring.monitor import Monitor
from maskdet.pipeline.privacy import PrivacyStage
from maskdet.settings import DetectionSettings, Settings

STAGES = ("detect", "second_stage", "privacy", "track", "annotate")
SecondStage = Callable[[Frame, Detections], Detections]


def load_settings_detector(settings: Settings, threads: int = 0) -> Detector:
    """The detector the settings name (the shipped one when they name none), with tiles and the mirror view when
    asked. threads: as load_detector's (0 = every core)."""
    return with_views(load_base_detector(settings, threads), settings.detection)


def reported(det: Detections, settings: DetectionSettings) -> Detections:
    """The boxes --classes and --max-det keep, best first within --max-det, as the detector used to keep them."""
    keep = np.ones(len(det), bool) if settings.classes is None else np.isin(det.class_id, list(settings.classes))
    if keep.all() and len(det) <= settings.max_det:
        return det
    index = np.flatnonzero(keep)
    index = index[np.argsort(-det.confidence[index], kind="stable")][: settings.max_det]
    index.sort()
    return Detections(det.xyxy[index], det.confidence[index], det.class_id[index], det.names, det.timings_ms,
                      None if det.tracker_id is None else det.tracker_id[index])


def load_base_detector(settings: Settings, threads: int = 0) -> Detector:
    """The model alone, without tiles or the mirror view: what several streams with their own views can share."""
    det = settings.detection
    detector = load_detector(det.weights or default_weights(det.device), det.finding(), det.imgsz, det.device, det.half, threads)
    if det.classes is not None and any(not 0 <= c < len(detector.names) for c in det.classes):
        raise UserError(f"--classes must be ids 0..{len(detector.names) - 1} ({', '.join(detector.names)})")
    return detector


def with_views(detector: Detector, det: DetectionSettings) -> Detector:
    """The detector run on tiles of the frame (det.tile) and on its mirror image (det.augment), as asked: thin
    wrappers around one loaded model."""
    if det.tile:
        try:
            tiles = TileSettings(size=det.tile, overlap=det.tile_overlap)
        except ValueError as error:
            raise UserError(f"--{error}") from None
        detector = TiledDetector(detector, tiles, det.finding().max_det)
    if det.augment:
        detector = FlipAugmentedDetector(detector, det.conf, det.finding().max_det, det.agnostic_nms)
    return detector


def load_second_stage(settings: Settings, names: tuple[str, ...]) -> SecondStage | None:
    """The crop classifier the settings name (the shipped one by default, when there is one), or None."""
    from maskdet.inference.second_stage import SecondStage as CropSecondStage

    path = second_stage_model(settings.detection.second_stage, settings.detection.weights)
    return CropSecondStage(path, names) if path is not None else None


class Pipeline:
    """The per-frame step for one stream, built from Settings (see the module docstring)."""

    def __init__(self, settings: Settings | None = None, detector: Detector | None = None,
                 second_stage: SecondStage | None | str = "load"):
        """Loads the models unless given (already loaded ones, shared with other streams)."""
        self.settings = settings or Settings()
        self.detector = detector if detector is not None else load_settings_detector(self.settings)
        self.second_stage: SecondStage | None = (load_second_stage(self.settings, self.names) if second_stage == "load"
                                                 else second_stage)  # type: ignore[assignment]
        mon, priv = self.settings.monitoring, self.settings.privacy
        monitoring = mon.enabled or priv.level == "counts"  # counts are of people: they need the tracker
        self.privacy = PrivacyStage(priv, monitoring)
        self.monitor = (Monitor.from_args(self.names, mon.line, mon.min_frames, mon.alert, mon.alert_after, mon.alert_url,
                                          self.privacy.level, priv.period_s)
                        if monitoring else None)
        out = self.settings.output
        self.annotator = Annotator(self.names, out.line_thickness, out.hide_labels, out.hide_conf)

    @property
    def names(self) -> tuple[str, ...]:
        return self.detector.names

    @property
    def imgsz(self) -> int:
        return self.detector.imgsz

    def new_stream(self) -> Pipeline:
        """A Pipeline for another stream (camera): the same loaded detector, its own tracker and people."""
        return Pipeline(self.settings, detector=self.detector, second_stage=self.second_stage)

    def process(self, frame: Frame) -> Detections:
        """Stages 1-4 on one frame. With blur, frame.image comes back changed (every face found blurred, whatever
        --classes and --max-det report)."""
        det = self.detector(frame.image)
        if self.second_stage is not None:
            det = self.second_stage(frame, det)
        det = self.privacy(frame, det)  # before the people stage: its crops are of the blurred frame
        det = reported(det, self.settings.detection)  # --classes, --max-det: what is reported, not what is hidden
        if self.monitor is not None:
            det = self.monitor(frame, det)
        return det

    def annotate(self, frame: Frame, det: Detections) -> np.ndarray:
        """Stage 5: the frame (as privacy left it) with boxes, labels and the counting line, on a copy."""
        picture = self.annotator(frame.image.copy(), det)
        if self.monitor is not None:
            self.monitor.annotate(picture)
        return picture

    def __call__(self, frame: Frame) -> tuple[Detections, np.ndarray]:
        """The whole step: Detections and the annotated picture, for the sinks."""
        det = self.process(frame)
        return det, self.annotate(frame, det)

    def overlay(self) -> list[tuple[str, tuple[int, int, int]]] | None:
        """Lines for a live window: people by verdict when tracking, else None (the window counts boxes)."""
        return self.monitor.overlay() if self.monitor is not None else None

