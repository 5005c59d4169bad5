"""Annotated video a browser plays: H.264 in MP4 through PyAV (FFmpeg's libx264), not OpenCV's mp4v.

Browsers do not play MPEG-4 Part 2 (what cv2.VideoWriter writes as mp4v), so detect.py's MediaSink
is fine for files on disk but not for the page. This sink takes the same annotated frames.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from maskdet.inference.detections import Detections, Frame
from maskdet.inference.sinks import Sink
from maskdet.inference.sources import SourceError
from maskdet.videoio import even_sides


class BrowserVideoSink(Sink):
    """Writes annotated frames to an H.264 .mp4 (yuv420p, moov atom first); the file appears on close."""

    def __init__(self, path: Path, fps: float):
        import av

        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.container = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream("libx264", rate=Fraction(round(fps * 1000), 1000))
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"preset": "veryfast", "crf": "23"}
        self.frames = 0
        self.size: tuple[int, int] | None = None

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        import av

        image = annotated if annotated is not None else frame.image
        h, w = image.shape[:2]
        if self.size is None:  # yuv420p needs even sides: an odd one gets a copy of its last row or column
            self.size = (w + w % 2, h + h % 2)
            self.stream.width, self.stream.height = self.size
        image = even_sides(image)
        video_frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self.container is None:
            return
        try:
            if self.frames:
                for packet in self.stream.encode():  # flush the encoder's delayed frames
                    self.container.mux(packet)
        finally:
            self.container.close()
            self.container = None
        if self.frames:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def bounded_frames(frames: Iterable[Frame], max_frames: int) -> Iterator[Frame]:
    """The frames of an uploaded video, up to `max_frames`.

    The upload's header was checked before the job started (uploads.check_video); this holds a file whose
    header lies about its length. (A frame past the pixel limit, midway, ends iter_video itself.)"""
    for index, frame in enumerate(frames):
        if index >= max_frames:
            raise SourceError(f"more than {max_frames} frames: the rest of the video was not processed")
        yield frame


class PeopleSink(Sink):
    """People, not boxes: a video of 30 people has 30, each with one verdict (the --track monitoring's
    tracker and people counter), and when each was in view, for the page's timeline (people.json)."""

    def __init__(self, path: Path, names: tuple[str, ...]):
        from maskdet.monitoring.people import PeopleCounter
        from maskdet.monitoring.tracking import Tracker

        self.path = path
        self.tracker = Tracker()
        self.counter = PeopleCounter(names)
        self.duration = 0.0

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        self.counter(frame, self.tracker(frame, det))
        self.duration = max(self.duration, frame.timestamp + 1 / (frame.fps or 25.0))

    def counts(self) -> dict[str, int]:
        """People with a verdict so far, by verdict."""
        return dict(self.counter.by_verdict())

    def close(self) -> None:
        from maskdet.fileio import atomic_write_text

        self.counter.finish_all()
        people = sorted(self.counter.people, key=lambda p: p.first_time)
        atomic_write_text(self.path, json.dumps({
            "duration": round(self.duration, 3),
            "people": [{"id": p.track_id, "verdict": self.counter.verdict_name(p), "first": round(p.first_time, 3),
                        "last": round(p.last_time, 3), "frames": p.frames, "share": round(p.share(), 3),
                        "confidence": round(p.confidence(), 3)} for p in people]}))
