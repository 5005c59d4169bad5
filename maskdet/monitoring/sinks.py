"""The monitoring writers: people.csv (+ people/ crops), alerts/ + alerts.jsonl (+ webhook), report.html.

They are sinks like those of maskdet.inference.sinks: written as results arrive, closed cleanly by run() on
Ctrl-C or SIGTERM too. run() enters them report first, so they close people, then alerts, then the
report: the report is built from exactly the people and alerts the other two files hold.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from maskdet.fileio import atomic_write_bytes, atomic_write_text
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.sinks import Sink
from maskdet.inference.visualize import class_color, draw_box
from maskdet.interrupts import interrupts_held
from maskdet.monitoring.people import Alert, PeopleCounter, Person, crop_box, thumbnail
from maskdet.monitoring.report import render
from maskdet.monitoring.webhook import WebhookSender

PEOPLE_FIELDS = ["track_id", "source", "first_seen_at", "first_time_s", "first_frame", "last_time_s", "last_frame",
                 "frames", "verdict", "verdict_share", "confidence", "crossings", "crop"]
Log = Callable[[str], None]


def save_jpeg(path: Path, image: np.ndarray) -> bool:
    ok, data = cv2.imencode(".jpg", image)
    if ok:
        atomic_write_bytes(path, data.tobytes())
    return bool(ok)


class PeopleCsvSink(Sink):
    """A row per person, written and flushed as they leave the view, with their best crop under people/."""

    def __init__(self, run_dir: Path, counter: PeopleCounter):
        self.run_dir = run_dir
        self.counter = counter
        self.file = open(run_dir / "people.csv", "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, PEOPLE_FIELDS)
        self.writer.writeheader()
        self.file.flush()
        self.rows = 0

    def _write_left(self) -> None:
        for person in self.counter.take_left():
            self.writer.writerow(self.row(person))
            self.rows += 1
        self.file.flush()

    def row(self, person: Person) -> dict:
        if person.best_crop is not None and person.best_crop.size:
            path = self.run_dir / "people" / f"{person.track_id}_{self.counter.verdict_name(person)}.jpg"
            if save_jpeg(path, person.best_crop):
                person.crop_path = str(path.relative_to(self.run_dir))
            person.best_crop = None  # saved: only the thumbnail stays in memory
        return {"track_id": person.track_id, "source": person.source, "first_seen_at": person.first_seen_at,
                "first_time_s": round(person.first_time, 3), "first_frame": person.first_frame,
                "last_time_s": round(person.last_time, 3), "last_frame": person.last_frame, "frames": person.frames,
                "verdict": self.counter.verdict_name(person), "verdict_share": round(person.share(), 3),
                "confidence": round(person.confidence(), 4),
                "crossings": " ".join(f"{d}@{f}" for d, f in person.crossings), "crop": person.crop_path}

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        self._write_left()

    def close(self) -> None:
        if not self.file.closed:
            try:
                self.counter.finish_all()
                self._write_left()
            finally:
                self.file.close()


class AlertSink(Sink):
    """Each alert: one printed line, the frame and the face under alerts/, a record in alerts.jsonl (rewritten
    atomically whenever a delivery status changes) and, with a webhook, a POST from the background queue."""

    def __init__(self, run_dir: Path, counter: PeopleCounter, log: Log, url: str | None = None,
                 sender: Callable[..., WebhookSender] = WebhookSender):
        self.run_dir = run_dir
        self.counter = counter
        self.log = log
        self.records: list[dict] = []
        self.crops: dict[int, bytes | None] = {}  # track id -> JPEG thumbnail, for the report
        self.lock = threading.Lock()
        self.path = run_dir / "alerts.jsonl"
        self._save_records()
        self.webhook = sender(url, self._on_status) if url else None

    def _save_records(self) -> None:
        with self.lock:
            text = "".join(json.dumps(r) + "\n" for r in self.records)
        atomic_write_text(self.path, text)

    def _on_status(self, record: dict, status: str) -> None:
        with self.lock:
            record["delivery"] = status
        self._save_records()

    def handle(self, alert: Alert) -> None:
        person, frame = alert.person, alert.frame
        name = self.counter.verdict_name(person)
        folder = self.run_dir / "alerts"
        stem = f"{person.track_id}_{name}"
        crop = crop_box(frame.image, alert.box)
        view = frame.image.copy()
        draw_box(view, alert.box, class_color(person.verdict or 0, self.counter.names), f"#{person.track_id} {name}", 2)
        save_jpeg(folder / f"{stem}_frame.jpg", view)
        save_jpeg(folder / f"{stem}_face.jpg", crop)
        self.crops[person.track_id] = thumbnail(crop)
        record = {"time": alert.time, "source": frame.source, "frame": frame.index, "timestamp": round(frame.timestamp, 3),
                  "track_id": person.track_id, "verdict": name, "confidence": round(alert.confidence, 4),
                  "box": [round(float(v), 1) for v in alert.box], "crop": f"alerts/{stem}_face.jpg",
                  "frame_image": f"alerts/{stem}_frame.jpg", "delivery": "queued" if self.webhook else "not sent (no --alert-url)"}
        with self.lock:
            self.records.append(record)
        self._save_records()
        self.log(f"ALERT #{person.track_id} {name} ({alert.confidence:.2f}) in {frame.source} frame {frame.index}: "
                 f"{record['crop']}")
        if self.webhook:
            self.webhook.submit(record)

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        for alert in self.counter.take_alerts():
            self.handle(alert)

    def undelivered(self) -> list[dict]:
        return [r for r in self.records if r["delivery"].startswith("undelivered")]

    def close(self) -> None:
        for alert in self.counter.take_alerts():
            self.handle(alert)
        if self.webhook is not None:
            self.webhook.close()
            for record in self.undelivered():
                self.log(f"undelivered alert: #{record['track_id']} {record['verdict']} at {record['time']} ({record['delivery']})")
        self._save_records()

    def lines(self) -> list[str]:
        if not self.records:
            return ["alerts: none"]
        line = f"alerts: {len(self.records)} raised"
        if self.webhook is not None:
            delivered = sum(r["delivery"] == "delivered" for r in self.records)
            line += f", {delivered} delivered, {len(self.undelivered())} undelivered (listed in alerts.jsonl)"
        return [line]


class ReportSink(Sink):
    """report.html, written when the run ends (Ctrl-C included), after people.csv and alerts.jsonl are final."""

    def __init__(self, path: Path, counter: PeopleCounter, alerts: AlertSink, title: str):
        self.path = path
        self.counter = counter
        self.alerts = alerts
        self.title = title
        self.interrupted = False

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        pass

    def close(self) -> None:
        with interrupts_held():  # a second Ctrl-C while the report is drawn waits until it is written
            with self.alerts.lock:
                records = [dict(r) for r in self.alerts.records]
            atomic_write_text(self.path, render(self.counter, records, self.alerts.crops, self.title, self.interrupted))
