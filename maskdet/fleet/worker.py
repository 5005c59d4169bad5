"""A camera worker: one copy of the model serving several cameras (a Ray actor; see runner.py).

The driver calls step(camera) at each camera's sampling rate; the worker hands the newest frame of that
camera to its per-frame pipeline and returns what came of it: people who left the view, alerts raised,
the camera's state. Results travel only as return values, so a worker killed mid-call loses that one
frame and nothing already returned. Cameras are opened lazily on their first step: a worker restarted
by Ray picks its cameras up again on the driver's next call, with a new incarnation in its track ids.

This module imports no Ray: it is plain Python, and Ray wraps it in runner.py.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from maskdet.fleet.cameras import Camera, FleetDefaults, live_window_s
from maskdet.fleet.store import ALERT_ID_PREFIX, VERDICTS, period_start, utc_text
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.sources import LatestFrameReader, SourceSpec, iter_video, quiet_opencv_logs
from maskdet.monitoring.people import Person
from maskdet.pipeline.step import Pipeline, load_second_stage, with_views
from maskdet.settings import MAX_VIDEO_PIXELS, DetectionSettings, MonitoringSettings, PrivacySettings, Settings
from maskdet.videoio import VideoError, VideoFile


def camera_settings(defaults: FleetDefaults, camera: Camera | None = None) -> Settings:
    """The per-frame step's settings for one camera: the fleet's defaults with the camera's own line, alerts, tiles
    and mirror view (alerts are delivered by the driver, so the step gets no webhook)."""
    detection = DetectionSettings(weights=defaults.model or None, imgsz=defaults.imgsz, conf=defaults.conf,
                                  tile=camera.tile if camera else defaults.tile,
                                  augment=camera.augment if camera else defaults.augment)
    monitoring = MonitoringSettings(track=True, min_frames=camera.min_frames if camera else defaults.min_frames,
                                    line=camera.line if camera else None,
                                    alert=list(camera.alert if camera else defaults.alert) or None,
                                    alert_after=camera.alert_after if camera else defaults.alert_after)
    return Settings(detection=detection, monitoring=monitoring,
                    privacy=PrivacySettings(level=defaults.privacy, period=defaults.period))


def load_model(defaults: FleetDefaults, threads: int = 1):
    """The model a worker shares between its cameras (each camera adds its own tiles and mirror view: see
    CameraPipeline): one inference thread, as a worker is one core (more workers use more cores)."""
    from maskdet.pipeline.step import load_base_detector

    return load_base_detector(camera_settings(defaults), threads=threads)


class CameraPipeline:
    """maskdet's per-frame step (Pipeline) for one camera, on the worker's shared detector, and what the fleet
    takes from it after each frame: the people who left the view and the alerts raised."""

    def __init__(self, detector, camera: Camera, defaults: FleetDefaults, second_stage=None):
        """detector: the worker's model (load_model); this camera's tiles and mirror view are wrapped around it."""
        settings = camera_settings(defaults, camera)
        self.step = Pipeline(settings, detector=with_views(detector, settings.detection), second_stage=second_stage)
        self.people = self.step.monitor.people

    def process(self, frame: Frame) -> Detections:
        return self.step.process(frame)

    def take_people(self) -> list[Person]:
        left = self.people.take_left()
        self.people.people.clear()  # the store keeps them: a camera that runs for months must not grow in memory
        return left

    def take_alerts(self) -> list:
        alerts = self.people.take_alerts()
        self.people.alerted.clear()
        return alerts

    def finish(self) -> None:
        self.people.finish_all()

    def verdict(self, person: Person) -> str:
        return self.people.verdict_name(person)


class CameraReader(LatestFrameReader):
    """The newest frame of a live camera, read on a thread; reconnects with backoff for ever.

    Unlike detect.py's reader it starts even when the camera is down at first (the others must not
    wait for it), and hands frames out without blocking (the driver paces the sampling)."""

    def __init__(self, camera: Camera, log):
        spec = SourceSpec("webcam" if camera.kind == "webcam" else "stream", camera.source)
        super().__init__(spec, log, give_up_after=0)
        self.opened_wall = time.time()
        self.last_wall: float | None = None  # wall-clock time of the newest frame

    def start(self) -> None:
        """Connect on the reader's thread (an open can take OPEN_TIMEOUT_MS: the worker's other cameras go on)."""
        self.started = time.perf_counter()
        self.opened_wall = time.time()
        self._thread = threading.Thread(target=self._run, args=(None,), name=f"reader-{self.name}", daemon=True)
        self._thread.start()

    def newest(self, wait_s: float) -> tuple[np.ndarray, int, float] | None:
        """The newest frame not handed out yet, waiting up to wait_s for one; None if none came."""
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self._latest is None or self._latest[1] == self._taken:
                left = deadline - time.monotonic()
                if left <= 0 or self._ended:
                    return None
                self._cond.wait(left)
            image, index, captured = self._latest
            self._taken = index
        self.last_wall = time.time() - (time.perf_counter() - captured)
        return image, index, captured

    def age(self) -> float:
        """Seconds since the newest frame arrived (or since the camera was first tried)."""
        with self._cond:
            captured = self._latest[2] if self._latest is not None else None
        return time.perf_counter() - (captured if captured is not None else self.started)

    def ever_sent(self) -> bool:
        """Whether any frame has come yet (a camera that never sent one is not live, however recently tried)."""
        with self._cond:
            return self._latest is not None


class CameraWorker:
    """One model, several cameras. Every method returns plain dicts (what crosses Ray)."""

    def __init__(self, defaults: FleetDefaults):
        quiet_opencv_logs()
        self.defaults = defaults
        self.detector = load_model(defaults)
        self.second_stage = load_second_stage(camera_settings(defaults), self.detector.names)  # shared by its cameras
        self.incarnation = uuid.uuid4().hex[:8]  # a restarted worker's track ids never collide with the last one's
        self.where = f"{socket.gethostname()}:{os.getpid()}"
        self.cameras: dict[str, tuple[CameraReader, CameraPipeline]] = {}
        self.notes: list[str] = []
        self.refused: set[str] = set()
        self.line_checked: set[tuple[str, int, int]] = set()  # (camera, width, height) its --line was checked against

    def pid(self) -> int:
        return os.getpid()

    # -- live cameras
    def step(self, camera: Camera) -> dict:
        """Process the newest frame of this camera (opening it first if this worker has not yet)."""
        if camera.name not in self.cameras:
            # The reader's own notes (each retry) stay quiet: the driver reports each change of state once.
            reader = CameraReader(camera, lambda note: None)
            reader.start()
            self.cameras[camera.name] = (reader, CameraPipeline(self.detector, camera, self.defaults, self.second_stage))
        reader, pipeline = self.cameras[camera.name]
        got = reader.newest(wait_s=min(1.0, 0.5 / camera.fps))
        processed = 0
        if got is not None and got[0].shape[0] * got[0].shape[1] > MAX_VIDEO_PIXELS:
            if camera.name not in self.refused:  # a camera sending frames bigger than 4K: said once, never processed
                self.refused.add(camera.name)
                self.notes.append(f"warning: {camera.name}: frames of {got[0].shape[1]}x{got[0].shape[0]} are over "
                                  f"{MAX_VIDEO_PIXELS:,} pixels: not processed")
            got = None
        if got is not None:
            image, index, captured = got
            # One tracker step per sample, as for a video at the sampling rate: with the capture timestamps ByteTrack would
            # count a late sample as several frames and drop tracks it should keep (people then count twice).
            frame = Frame(image, camera.source, camera.name, "video", index, captured - reader.started, captured, camera.fps)
            self._check_line(camera, pipeline, image)
            pipeline.process(frame)
            processed = 1
        age = reader.age()
        if not reader.ever_sent():  # no frame yet from this worker's reader: connecting, then down
            state = "connecting" if age < self.defaults.down_after else "down"
        else:
            state = "live" if age < live_window_s(camera.fps) else "reconnecting" if age < self.defaults.down_after else "down"
        return self._result(camera, reader.opened_wall, reader.started, pipeline, state, processed,
                            utc_text(reader.last_wall) if reader.last_wall else None)

    def stop(self, camera: Camera) -> dict:
        """Close a camera: everyone still in view is counted as having left."""
        reader, pipeline = self.cameras.pop(camera.name, (None, None))
        if reader is None:
            return self._empty(camera)
        reader.close()
        pipeline.finish()
        return self._result(camera, reader.opened_wall, reader.started, pipeline, "stopped", 0, None)

    def _check_line(self, camera: Camera, pipeline: CameraPipeline, image: np.ndarray) -> None:
        """A camera's line in pixels that misses its frames is said once for each frame size."""
        h, w = image.shape[:2]
        if (camera.name, w, h) not in self.line_checked:
            self.line_checked.add((camera.name, w, h))
            problem = pipeline.step.monitor.line_problem(w, h)
            if problem:
                self.notes.append(f"warning: {camera.name}: {problem.replace('--line', 'its line', 1)}")

    def _empty(self, camera: Camera) -> dict:
        return {"camera": camera.name, "worker": self.where, "incarnation": self.incarnation, "state": "stopped",
                "processed": 0, "last_frame_at": None, "people": [], "alerts": [], "periods": [], "notes": self._take_notes()}

    def _take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    def _result(self, camera: Camera, wall_start: float, clock_start: float, pipeline: CameraPipeline, state: str,
                processed: int, last_frame_at: str | None) -> dict:
        def when(seconds_in: float) -> str:
            return utc_text(wall_start + seconds_in)

        left = pipeline.take_people()
        counts_only = self.defaults.privacy == "counts"  # no per-person row, and alerts keyed by a random id, not a track
        people = [] if counts_only else [
            {"camera": camera.name, "track": f"{self.incarnation}-{p.track_id}", "site": camera.site, "zone": camera.zone,
             "first_seen": when(p.first_time), "last_seen": when(p.last_time), "verdict": pipeline.verdict(p),
             "frames": p.frames, "confidence": round(p.confidence(), 4),
             "crossings": " ".join(f"{d}@{t}" for d, t in p.crossings)} for p in left]
        periods = self._periods(camera, pipeline, left, wall_start) if counts_only else []
        alerts = [{"camera": camera.name,
                   "track": ALERT_ID_PREFIX + uuid.uuid4().hex[:12] if counts_only else f"{self.incarnation}-{a.person.track_id}",
                   "site": camera.site, "zone": camera.zone, "time": when(a.frame.timestamp),
                   "verdict": pipeline.verdict(a.person), "confidence": round(a.confidence, 4)} for a in pipeline.take_alerts()]
        return {"camera": camera.name, "worker": self.where, "incarnation": self.incarnation, "state": state,
                "processed": processed, "last_frame_at": last_frame_at, "people": people, "alerts": alerts,
                "periods": periods, "notes": self._take_notes()}

    def _periods(self, camera: Camera, pipeline: CameraPipeline, left: list[Person], wall_start: float) -> list[dict]:
        """privacy counts: the people who left, as counts by verdict in the period each was first seen in;
        nothing of who they were (no track, no times) leaves the worker."""
        period_s = self.defaults.period
        rows: dict[str, dict] = {}
        for person in left:
            verdict = pipeline.verdict(person)
            if verdict not in VERDICTS:
                continue
            start = period_start(wall_start + person.first_time, period_s)
            row = rows.setdefault(start, {"camera": camera.name, "start": start, "period_s": int(period_s),
                                          "site": camera.site, "zone": camera.zone})
            row[verdict] = row.get(verdict, 0) + 1
        return list(rows.values())

    # -- recorded videos (--archive)
    def run_video(self, camera: Camera) -> dict:
        """A whole video at the camera's sampling rate; its people and alerts on the video's own clock
        (it started its file's modification time minus its length: recorders write to the end)."""
        path = Path(camera.source)
        try:
            modified = path.stat().st_mtime
        except OSError as exc:
            return {**self._empty(camera), "error": f"{path}: {exc.strerror}", "frames": 0, "started": utc_text()}
        try:
            with VideoFile(path, MAX_VIDEO_PIXELS) as video:  # its header: length and rate
                fps, total = video.info.fps, video.info.frames
        except VideoError as exc:
            return {**self._empty(camera), "error": f"{path}: {exc}", "frames": 0, "started": utc_text()}
        started = modified - total / fps
        stride = max(1, round(fps / camera.fps))
        pipeline = CameraPipeline(self.detector, camera, self.defaults, self.second_stage)
        frames = 0
        try:
            for frame in iter_video(path, stride, lambda note: self.notes.append(f"{camera.name}: {note}"),
                                    max_pixels=MAX_VIDEO_PIXELS):
                self._check_line(camera, pipeline, frame.image)
                pipeline.process(frame)
                frames += 1
        except Exception as exc:  # SourceError and whatever a damaged file makes OpenCV raise: the video is skipped
            return {**self._empty(camera), "error": str(exc), "frames": frames, "started": utc_text(started)}
        pipeline.finish()
        out = self._result(camera, started, 0.0, pipeline, "done", frames, None)
        out.update(frames=frames, started=utc_text(started), error=None)
        return out
