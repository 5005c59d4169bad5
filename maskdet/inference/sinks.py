"""Where detections go. Each sink is a context manager that writes as results arrive and
closes cleanly, so Ctrl-C or the end of input leaves complete files: a playable video, a CSV
and a JSON with every detection made so far.
"""

from __future__ import annotations

import csv
import json
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from maskdet.csvcells import SafeDictWriter
from maskdet.errors import UserError
from maskdet.fileio import atomic_write_bytes, atomic_write_text
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.threads import BackgroundWorker
from maskdet.videoio import even_sides
from maskdet.yolo_format import label_line

RECORD_FIELDS = ["source", "frame", "timestamp", "class_id", "class_name", "confidence", "x1", "y1", "x2", "y2"]


def records(frame: Frame, det: Detections) -> list[dict]:
    """One flat record per detection: what --save-csv and --save-json write (with --track, its track_id)."""
    rows = [
        {"source": frame.source, "frame": frame.index, "timestamp": round(frame.timestamp, 3),
         "class_id": int(det.class_id[i]), "class_name": det.class_name(i), "confidence": round(float(det.confidence[i]), 4),
         **{k: round(float(v), 1) for k, v in zip(("x1", "y1", "x2", "y2"), det.xyxy[i])}}
        for i in range(len(det))
    ]
    if det.tracker_id is not None:
        for row, track_id in zip(rows, det.tracker_id):
            row["track_id"] = int(track_id)  # -1: not (yet) confirmed as a track
    return rows


def output_stem(frame: Frame) -> str:
    """Images keep their stem; video and live frames get the frame number appended."""
    return frame.name if frame.kind == "image" else f"{frame.name}_{frame.index}"


class Sink:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


MP4V_NOTE = ("note: PyAV is not installed (pip install av): videos are written as OpenCV's mp4v, which browsers do not "
             "play and which a killed run leaves unreadable")
_noted: set[str] = set()


def earlier_csv_header(path: Path) -> list[str] | None:
    """The header row of a CSV an earlier run left at `path` (None: no file, or an empty one). A row cut off by a
    kill is ended, so the next run's rows start on a line of their own."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as f:
        first = f.readline(64 * 1024)
        f.seek(-1, 2)
        ended = f.read(1) == b"\n"
    if not ended:
        with open(path, "ab") as f:
            f.write(b"\r\n")
    return next(csv.reader([first.decode("utf-8", "replace")]), [])


def note_once(text: str) -> None:
    if text not in _noted:
        _noted.add(text)
        print(text, file=sys.stderr)


class H264Writer:
    """H.264 in a fragmented MP4 through PyAV (FFmpeg, libx264): what browsers play, as the server writes.

    Fragmented (moov first, then a fragment per key frame, one a second) so the file is playable up to the
    last whole second even if the process is killed (kill -9, a power cut): a plain MP4 is unreadable
    until its index is written at the end. Odd sides get one more row or column (videoio.even_sides).
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        import av

        self.size = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        rate = Fraction(round(fps * 1000), 1000)
        self.container = av.open(str(path), "w", format="mp4",
                                 options={"movflags": "frag_keyframe+empty_moov+default_base_moof",
                                          "flush_packets": "1"})  # each fragment to the OS as it is made
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        keyint = str(max(1, round(fps)))  # a key frame, hence a fragment on disk, every second
        self.stream.options = {"preset": "veryfast", "crf": "23", "g": keyint, "keyint_min": keyint}
        self.stream.time_base = 1 / rate
        self.pts = 0

    def write(self, image: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(even_sides(image), format="bgr24").reformat(format="yuv420p")
        frame.pts = self.pts
        self.pts += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def release(self) -> None:
        try:
            for packet in self.stream.encode():  # the encoder's delayed frames
                self.container.mux(packet)
        finally:
            self.container.close()


def open_video_writer(path: Path, fps: float, size: tuple[int, int]):
    """H.264 (fragmented MP4) with PyAV, which the light install has through supervision; else OpenCV's mp4v, with a note."""
    try:
        return H264Writer(path, fps, size)
    except ImportError:
        note_once(MP4V_NOTE)
    except Exception as exc:  # an FFmpeg build without libx264
        note_once(f"note: no H.264 encoder ({exc}): videos are written as OpenCV's mp4v, which browsers do not play")
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)


class VideoOut:
    """One .mp4 being written on a background thread, so encoding overlaps the next frame's inference."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], name: str):
        self.fps = fps
        self.writer = open_video_writer(path, fps, size)
        self.worker = BackgroundWorker(self._encode, name=f"video-{name}")
        self.frames_written = 0
        self.first_timestamp: float | None = None
        self.held: np.ndarray | None = None

    def _encode(self, item: tuple[np.ndarray, int]) -> None:
        image, copies = item
        for _ in range(copies):
            self.writer.write(image)

    def add(self, image: np.ndarray, copies: int = 1) -> None:
        self.worker.submit((image, copies))
        self.frames_written += copies

    def add_in_real_time(self, image: np.ndarray, timestamp: float) -> None:
        """Hold each image until the time of the next one. A live reader skips frames the model had no
        time for; written once each, a minute of webcam would play back in seconds. The image waits
        here until its successor says how long it lasted; close() writes the last one."""
        if self.first_timestamp is None:
            self.first_timestamp = timestamp
        starts_at = round((timestamp - self.first_timestamp) * self.fps)  # frame number this image is due at
        if self.held is not None:
            self.add(self.held, max(1, starts_at - self.frames_written))
        self.held = image

    def close(self) -> None:
        try:
            if self.held is not None:
                self.add(self.held)
                self.held = None
            self.worker.close()  # every queued frame is encoded first
        finally:
            self.writer.release()  # the last fragment (H.264) or the index (mp4v): the whole .mp4 after Ctrl-C too


class MediaSink(Sink):
    """Annotated images as files, videos and live sources as one .mp4 each (live ones in real time)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.videos: dict[str, VideoOut] = {}
        self.saved: list[Path] = []

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        if annotated is None:
            return
        if frame.kind == "image":
            suffix = Path(frame.source).suffix.lower()
            suffix = suffix if suffix in (".jpg", ".jpeg", ".png", ".bmp", ".webp") else ".jpg"
            ok, data = cv2.imencode(suffix, annotated)
            if ok:
                path = self.out_dir / f"{frame.name}{suffix}"
                atomic_write_bytes(path, data.tobytes())
                self.saved.append(path)
            return
        if frame.source not in self.videos:
            path = self.out_dir / f"{frame.name}.mp4"
            h, w = annotated.shape[:2]
            self.videos[frame.source] = VideoOut(path, frame.fps or 25.0, (w, h), frame.name)
            self.saved.append(path)
        video = self.videos[frame.source]
        if frame.kind == "live":
            video.add_in_real_time(annotated, frame.timestamp)
        else:
            video.add(annotated)

    def close(self) -> None:
        """Close every video even if one fails (a full disk), then report the first failure."""
        errors = []
        for video in self.videos.values():
            try:
                video.close()
            except Exception as exc:
                errors.append(exc)
        self.videos.clear()
        if errors:
            raise errors[0]


class CsvSink(Sink):
    """--save-csv. In a run folder reused with --exist-ok, the rows go after those of the runs before (as YOLOv5's
    predictions.csv does), never over them."""

    def __init__(self, path: Path, track: bool = False):
        self.path = path
        fields = RECORD_FIELDS + ["track_id"] if track else RECORD_FIELDS
        path.parent.mkdir(parents=True, exist_ok=True)
        header = earlier_csv_header(path)
        if header is not None and header != fields:
            raise UserError(f"an earlier run wrote other columns here ({','.join(header)[:200]}), so this run's rows "
                            "cannot follow them: choose another --name, or move the file", path)
        self.file = open(path, "a", newline="", encoding="utf-8")
        self.writer = SafeDictWriter(self.file, fields)  # a file or URL may start with =
        if header is None:
            self.writer.writeheader()
        else:
            note_once(f"note: {path.name}: this run's rows follow those already there (--exist-ok)")

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        self.writer.writerows(records(frame, det))
        self.file.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


class JsonSink(Sink):
    """A JSON array that is valid after every frame: each frame's records are written over the closing
    ']' in one write call, which ends with a new ']'. Ctrl-C, and even kill -9, leave a file json.load
    reads, holding every frame finished so far. In a run folder reused with --exist-ok, the records go after
    those of the runs before."""

    END = b"\n]\n"

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        size = path.stat().st_size if path.is_file() else 0
        self.file = open(path, "r+b" if size else "wb", buffering=0)  # unbuffered: one write() call per frame
        if size:
            head = self.file.read(1)
            self.file.seek(size - len(self.END))
            if head != b"[" or self.file.read() != self.END:
                self.file.close()
                raise UserError("an earlier run left a file here that is not a JSON array this tool wrote, so this "
                                "run's records cannot follow them: choose another --name, or move the file", path)
            self.end = size - len(self.END)  # where the closing ']' starts: the next records go there
            self.first = self.end == 1
            note_once(f"note: {path.name}: this run's records follow those already there (--exist-ok)")
        else:
            self.file.write(b"[" + self.END)
            self.end, self.first = 1, True

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        chunks = []
        for record in records(frame, det):
            chunks.append(("\n" if self.first else ",\n") + json.dumps(record))
            self.first = False
        if not chunks:
            return
        body = "".join(chunks).encode("utf-8")
        self.file.seek(self.end)
        self.file.write(body + self.END)
        self.end += len(body)

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


class YoloTxtSink(Sink):
    """YOLO label files labelImg opens (with classes.txt), so detections can be corrected and trained on."""

    def __init__(self, out_dir: Path, names: tuple[str, ...], save_conf: bool = False):
        self.out_dir = out_dir
        self.save_conf = save_conf
        atomic_write_text(out_dir / "classes.txt", "".join(f"{n}\n" for n in names))

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        h, w = frame.image.shape[:2]
        tracks = det.tracker_id.tolist() if det.tracker_id is not None else [None] * len(det)
        lines = [label_line(box, conf if self.save_conf else None, track)
                 for box, conf, track in zip(det.yolo_boxes(w, h), det.confidence.tolist(), tracks)]
        atomic_write_text(self.out_dir / f"{output_stem(frame)}.txt", "".join(f"{line}\n" for line in lines))


class CropSink(Sink):
    """Each detected face as its own image, in a folder per class."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        h, w = frame.image.shape[:2]
        for i in range(len(det)):
            x1, y1, x2, y2 = (int(round(v)) for v in det.xyxy[i])
            crop = frame.image[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
            if crop.size:
                ok, data = cv2.imencode(".jpg", crop)
                if ok:
                    atomic_write_bytes(self.out_dir / det.class_name(i) / f"{output_stem(frame)}_{i}.jpg", data.tobytes())
