"""Where detections go. Each sink is a context manager that writes as results arrive and
closes cleanly, so Ctrl-C or the end of input leaves complete files: a playable video, a CSV
and a JSON with every detection made so far.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from maskdet.detections import Detections, Frame
from maskdet.fileio import atomic_write_bytes, atomic_write_text
from maskdet.threads import BackgroundWorker

RECORD_FIELDS = ["source", "frame", "timestamp", "class_id", "class_name", "confidence", "x1", "y1", "x2", "y2"]


def records(frame: Frame, det: Detections) -> list[dict]:
    """One flat record per detection: what --save-csv and --save-json write."""
    return [
        {"source": frame.source, "frame": frame.index, "timestamp": round(frame.timestamp, 3),
         "class_id": int(det.class_id[i]), "class_name": det.class_name(i), "confidence": round(float(det.confidence[i]), 4),
         **{k: round(float(v), 1) for k, v in zip(("x1", "y1", "x2", "y2"), det.xyxy[i])}}
        for i in range(len(det))
    ]


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


class MediaSink(Sink):
    """Annotated images as files, videos and live sources as one .mp4 each."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.writers: dict[str, tuple[cv2.VideoWriter, BackgroundWorker]] = {}
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
        if frame.source not in self.writers:
            path = self.out_dir / f"{frame.name}.mp4"
            h, w = annotated.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), frame.fps or 25.0, (w, h))
            # Encoding runs on its own thread, overlapping the next frame's inference.
            self.writers[frame.source] = (writer, BackgroundWorker(writer.write, name=f"video-{frame.name}"))
            self.saved.append(path)
        self.writers[frame.source][1].submit(annotated)

    def close(self) -> None:
        for writer, worker in self.writers.values():
            try:
                worker.close()  # every queued frame is encoded first
            finally:
                writer.release()  # writes the index: the .mp4 is playable after Ctrl-C too
        self.writers.clear()


class CsvSink(Sink):
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, RECORD_FIELDS)
        self.writer.writeheader()

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        self.writer.writerows(records(frame, det))
        self.file.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


class JsonSink(Sink):
    """A JSON array written record by record; closing it (Ctrl-C included) writes the final ']'."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "w", encoding="utf-8")
        self.file.write("[")
        self.first = True

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        for record in records(frame, det):
            self.file.write(("\n" if self.first else ",\n") + json.dumps(record))
            self.first = False
        self.file.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.file.write("\n]\n")
            self.file.close()


class YoloTxtSink(Sink):
    """YOLO label files labelImg opens (with classes.txt), so detections can be corrected and trained on."""

    def __init__(self, out_dir: Path, names: tuple[str, ...], save_conf: bool = False):
        self.out_dir = out_dir
        self.save_conf = save_conf
        atomic_write_text(out_dir / "classes.txt", "".join(f"{n}\n" for n in names))

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        h, w = frame.image.shape[:2]
        lines = []
        for i in range(len(det)):
            x1, y1, x2, y2 = det.xyxy[i]
            line = f"{int(det.class_id[i])} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
            lines.append(f"{line} {float(det.confidence[i]):.4f}" if self.save_conf else line)
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
