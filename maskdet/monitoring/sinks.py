"""The monitoring writers: people.csv (+ people/ crops), alerts/ + alerts.jsonl (+ webhook), report.html,
and with --privacy counts counts.csv/json instead of anything per person.

With --privacy blur the frames they get are already blurred (run() blurs before any sink sees a frame) and
no face crop is written; with --privacy counts no image at all, and alerts carry no track ID.

They are sinks like those of maskdet.inference.sinks: written as results arrive, closed cleanly by run() on
Ctrl-C or SIGTERM too. run() enters them report first, so they close people, then alerts, then the
report: the report is built from exactly the people and alerts the other two files hold.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from maskdet.csvcells import SafeDictWriter
from maskdet.fileio import atomic_write_bytes, atomic_write_text
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.sinks import Sink
from maskdet.inference.visualize import class_color, draw_box
from maskdet.interrupts import interrupts_held
from maskdet.monitoring.people import Alert, PeopleCounter, Person, crop_box, now_iso, thumbnail
from maskdet.monitoring.report import REWRITE_EVERY_S, RunInfo, render, render_counts
from maskdet.monitoring.tracking import DEFAULT_FPS, sequence_key
from maskdet.monitoring.webhook import WebhookSender
from maskdet.privacy.counts import PeriodCounts
from maskdet.privacy.retention import age_of, prune_table

PEOPLE_FIELDS = ["track_id", "source", "first_seen_at", "first_time_s", "first_frame", "last_time_s", "last_frame",
                 "frames", "verdict", "verdict_share", "confidence", "crossings", "crop"]
Log = Callable[[str], None]
FRAME_THUMB_PX = 320  # an alert's frame in the report: large enough to see who it was about


def save_jpeg(path: Path, image: np.ndarray) -> bool:
    ok, data = cv2.imencode(".jpg", image)
    if ok:
        atomic_write_bytes(path, data.tobytes())
    return bool(ok)


class PeopleCsvSink(Sink):
    """A row per person, written and flushed as they leave the view, with their best crop under people/."""

    def __init__(self, run_dir: Path, counter: PeopleCounter, crops: bool = True):
        self.run_dir = run_dir
        self.counter = counter
        self.crops = crops  # False with --privacy blur: no face crop is written at all
        self.file = open(run_dir / "people.csv", "w", newline="", encoding="utf-8")
        self.writer = SafeDictWriter(self.file, PEOPLE_FIELDS)  # sources are file names and URLs: no formulas
        self.writer.writeheader()
        self.file.flush()
        self.rows = 0

    def _write_left(self) -> None:
        for person in self.counter.take_left():
            self.writer.writerow(self.row(person))
            self.rows += 1
        self.file.flush()

    def row(self, person: Person) -> dict:
        if self.crops and person.best_crop is not None and person.best_crop.size:
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

    def prune(self, older_than_s: float) -> int:
        """--retain: rows older than the duration leave the file (reopened for appending after)."""
        self.file.close()
        try:
            return prune_table(self.run_dir / "people.csv", older_than_s)
        finally:
            self.file = open(self.run_dir / "people.csv", "a", newline="", encoding="utf-8")
            self.writer = SafeDictWriter(self.file, PEOPLE_FIELDS)

    def close(self) -> None:
        if not self.file.closed:
            try:
                self.counter.finish_all()
                self._write_left()
            finally:
                self.file.close()


class CountsSink(Sink):
    """--privacy counts: counts.csv and counts.json, people by verdict per period, rewritten as people are counted."""

    def __init__(self, run_dir: Path, counter: PeopleCounter, period_s: float):
        self.run_dir = run_dir
        self.counter = counter
        self.counts = PeriodCounts(counter.names, period_s)
        self._save()

    def _save(self) -> None:
        self.counts.save(self.run_dir / "counts.csv", self.run_dir / "counts.json")

    def _count_left(self) -> None:
        left = self.counter.take_left()
        for person in left:
            self.counts.add(person.source, person.first_time, self.counter.verdict_name(person))
        if left:
            self._save()

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        if self.counts.reach(frame.source, frame.timestamp):  # a new period: its row, 0 people so far
            self._save()
        self._count_left()

    def prune(self, older_than_s: float) -> int:
        before = len(self.counts.periods)
        self.counts.prune(lambda p: (age_of(p.until) or 0.0) <= older_than_s)
        if len(self.counts.periods) != before:
            self._save()
        return before - len(self.counts.periods)

    def close(self) -> None:
        self.counter.finish_all()
        self._count_left()
        self._save()


class AlertSink(Sink):
    """Each alert: one printed line, the frame and the face under alerts/, a record in alerts.jsonl (rewritten
    atomically whenever a delivery status changes) and, with a webhook, a POST from the background queue."""

    def __init__(self, run_dir: Path, counter: PeopleCounter, log: Log, url: str | None = None,
                 sender: Callable[..., WebhookSender] = WebhookSender, privacy: str = "off"):
        self.privacy = privacy  # blur: the frame (already blurred), no face crop; counts: no image, no track ID
        self.run_dir = run_dir
        self.counter = counter
        self.log = log
        self.records: list[dict] = []
        self.crops: dict[int, bytes | None] = {}  # track id -> JPEG thumbnail, for the report
        self.frames: dict[int, bytes | None] = {}  # track id -> the frame that raised the alert (box drawn), for the report
        self.lock = threading.Lock()
        self.raised = 0  # every alert of this run, those --retain has since removed from alerts.jsonl included
        self.retired = Counter()  # --retain: delivery outcome ("delivered", "undelivered", ...) -> records removed
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
        delivery = "queued" if self.webhook else "not sent (no --alert-url)"
        live = frame.kind == "live"  # a file's alerts are placed by "timestamp" (video time), a camera's by "time"
        if self.privacy == "counts":  # who it was stays unknown: no image, no track ID, no box
            record = {"time": alert.time, "source": frame.source, "timestamp": round(frame.timestamp, 3), "live": live,
                      "verdict": name, "confidence": round(alert.confidence, 4), "delivery": delivery}
            where = ""
        else:
            folder = self.run_dir / "alerts"
            stem = f"{person.track_id}_{name}"
            crop = crop_box(frame.image, alert.box)  # with blur, a region of the blurred frame
            view = frame.image.copy()
            draw_box(view, alert.box, class_color(person.verdict or 0, self.counter.names), f"#{person.track_id} {name}", 2)
            save_jpeg(folder / f"{stem}_frame.jpg", view)
            self.crops[person.track_id] = thumbnail(crop)
            self.frames[person.track_id] = thumbnail(view, FRAME_THUMB_PX)
            record = {"time": alert.time, "source": frame.source, "frame": frame.index, "timestamp": round(frame.timestamp, 3),
                      "live": live, "track_id": person.track_id, "verdict": name, "confidence": round(alert.confidence, 4),
                      "box": [round(float(v), 1) for v in alert.box]}
            if self.privacy == "off":
                save_jpeg(folder / f"{stem}_face.jpg", crop)
                record["crop"] = f"alerts/{stem}_face.jpg"
            record.update({"frame_image": f"alerts/{stem}_frame.jpg", "delivery": delivery})
            where = f": {record.get('crop', record['frame_image'])}"
        with self.lock:
            self.records.append(record)
            self.raised += 1
        self._save_records()
        who = "" if self.privacy == "counts" else f"#{person.track_id} "
        self.log(f"ALERT {who}{name} ({alert.confidence:.2f}) in {frame.source} frame {frame.index}{where}")
        if self.webhook:
            self.webhook.submit(record)

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        for alert in self.counter.take_alerts():
            self.handle(alert)

    def prune(self, older_than_s: float) -> int:
        """--retain: records older than the duration leave alerts.jsonl (and the report)."""
        with self.lock:
            before = len(self.records)
            for record in self.records:
                if (age_of(record["time"]) or 0.0) > older_than_s:
                    self.retired[record["delivery"].split(":")[0]] += 1
            self.records = [r for r in self.records if (age_of(r["time"]) or 0.0) <= older_than_s]
            gone = before - len(self.records)
        if gone:
            self._save_records()
        return gone

    def undelivered(self) -> list[dict]:
        return [r for r in self.records if r["delivery"].startswith("undelivered")]

    def close(self) -> None:
        for alert in self.counter.take_alerts():
            self.handle(alert)
        if self.webhook is not None:
            self.webhook.close()
            for record in self.undelivered():
                who = f"#{record['track_id']} " if "track_id" in record else ""
                self.log(f"undelivered alert: {who}{record['verdict']} at {record['time']} ({record['delivery']})")
        self._save_records()

    def lines(self) -> list[str]:
        if not self.raised:
            return ["alerts: none"]
        line = f"alerts: {self.raised} raised"  # by this run: --retain's removals are said on their own line
        if self.webhook is not None:
            delivered = sum(r["delivery"] == "delivered" for r in self.records) + self.retired["delivered"]
            undelivered = len(self.undelivered()) + self.retired["undelivered"]
            line += f", {delivered} delivered, {undelivered} undelivered (listed in alerts.jsonl)"
        return [line]


class ReportSink(Sink):
    """report.html, written when the run ends (Ctrl-C included), after people.csv and alerts.jsonl are final; and
    while it goes on, on its first frame and then every `every_s` seconds, saying so: a run that is killed (kill -9,
    a power cut) still leaves a report of what it saw until then."""

    def __init__(self, path: Path, counter: PeopleCounter, alerts: AlertSink, title: str,
                 counts: CountsSink | None = None, every_s: float = REWRITE_EVERY_S):
        self.counts = counts  # --privacy counts: a report of counts only, without a picture or a person
        self.every_s = every_s
        self.written_at: float | None = None  # time.monotonic() of the last report written while running
        self.path = path
        self.counter = counter
        self.alerts = alerts
        self.title = title
        self.interrupted = False
        self.info = RunInfo(started=now_iso())
        self.ends: dict[str, float] = {}  # each view's length so far (seconds): the report's duration is their sum
        self.images: Counter = Counter()

    def write(self, frame: Frame, det: Detections, annotated: np.ndarray | None) -> None:
        key = sequence_key(frame)
        if frame.kind == "image":  # the people counter's clock: DEFAULT_FPS images a second
            self.images[key] += 1
            self.ends[key] = self.images[key] / DEFAULT_FPS
        else:
            self.ends[key] = frame.timestamp + (1 / frame.fps if frame.fps else 0.0)
        self.info.live = self.info.live or frame.kind == "live"
        if frame.source not in self.info.sources:
            self.info.sources += (frame.source,)
        now = time.monotonic()
        if self.written_at is None or now - self.written_at >= self.every_s:
            self.written_at = now
            self._write(running_at=now_iso())

    def _write(self, running_at: str | None = None) -> None:
        with interrupts_held():  # a second Ctrl-C while the report is drawn waits until it is written
            with self.alerts.lock:
                records = [dict(r) for r in self.alerts.records]
            self.info.duration_s = sum(self.ends.values())
            if self.counts is not None:
                page = render_counts(self.counts.counts, len(records), self.title, self.interrupted, running_at)
            else:
                page = render(self.counter, records, self.alerts.crops, self.title, self.interrupted, self.info,
                              self.alerts.frames, running_at)
            atomic_write_text(self.path, page)

    def close(self) -> None:
        self._write()
