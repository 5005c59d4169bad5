"""The tracking stage: one ID per face while it moves through the view.

The tracker is Roboflow's ByteTrack (`trackers` package). It works on plain numpy boxes, so the
.onnx detector (no torch) and the .pt one are tracked the same way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from maskdet.inference.detections import Detections, Frame

# The shipped model scores real faces 0.5-0.95: ByteTrack's default 0.7 would leave many untracked.
ACTIVATION_THRESHOLD = 0.5
LOST_SECONDS = 1.0  # a face unseen this long has left the view (its ID is not reused)
DEFAULT_FPS = 25.0  # image sequences and streams that do not say


def sequence_key(frame: Frame) -> str:
    """Frames that belong to one continuous view: a video or live source (the same file listed twice is two
    views), or a folder of images."""
    return str(Path(frame.source).parent) if frame.kind == "image" else f"{frame.position} {frame.source}"


def load_bytetrack():
    """ByteTrack's class; without the package, run_cli turns the ModuleNotFoundError into one line naming
    the requirements file that brings it (maskdet.errors.REQUIREMENTS_OF_MODULE)."""
    from trackers import ByteTrackTracker

    return ByteTrackTracker


class Tracker:
    """Adds tracker_id to Detections, keeping their order; IDs are unique across the whole run."""

    def __init__(self, activation: float = ACTIVATION_THRESHOLD, lost_seconds: float = LOST_SECONDS):
        self.bytetrack = load_bytetrack()
        self.activation = activation
        self.lost_seconds = lost_seconds
        self.key: str | None = None
        self.tracker = None
        self.id_offset = 0  # IDs already handed out in earlier sources
        self.max_id = 0

    def fps(self, frame: Frame) -> float:
        return frame.fps or DEFAULT_FPS

    def _start(self, frame: Frame) -> None:
        self.key = sequence_key(frame)
        self.id_offset = self.max_id
        fps = self.fps(frame)
        self.tracker = self.bytetrack(
            lost_track_buffer=max(1, round(self.lost_seconds * 30)),  # counted in 30 fps frames, scaled by frame_rate
            frame_rate=fps, track_activation_threshold=self.activation, high_conf_det_threshold=self.activation,
            minimum_consecutive_frames=2)

    def __call__(self, frame: Frame, det: Detections) -> Detections:
        import supervision as sv

        if self.tracker is None or sequence_key(frame) != self.key:
            self._start(frame)
        sv_det = sv.Detections(xyxy=det.xyxy.astype(np.float32).reshape(-1, 4), confidence=det.confidence,
                               class_id=det.class_id, data={"index": np.arange(len(det))})
        # Live sources drop frames the model had no time for: the timestamp lets the motion model skip ahead.
        tracked = self.tracker.update(sv_det, timestamp=frame.timestamp if frame.kind == "live" else None)
        ids = np.full(len(det), -1, int)
        if len(tracked):
            found = tracked.tracker_id >= 0
            ids[tracked.data["index"][found]] = tracked.tracker_id[found] + 1 + self.id_offset  # IDs from 1, as people count
        if (ids >= 0).any():
            self.max_id = max(self.max_id, int(ids.max()))
        return replace(det, tracker_id=ids)
