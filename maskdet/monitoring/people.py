"""The people stage: tracked boxes become people, each with one verdict, line crossings and alerts.

A face whose class flickers from frame to frame is still one person with one verdict: the
confidence-weighted vote over every frame of its track (the class with the largest sum of
confidences), given once the track has MIN_FRAMES frames. Shorter tracks are not counted as
people (a false detection rarely lasts that long).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from maskdet.errors import UserError
from maskdet.inference.detections import Detections, Frame
from maskdet.monitoring.tracking import DEFAULT_FPS, LOST_SECONDS, sequence_key
from maskdet.settings import ALERT_AFTER_S, MIN_FRAMES

THUMB_PX = 96  # thumbnails kept in memory for the report
COMPLIANT = "with_mask"


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def crop_box(image: np.ndarray, box: np.ndarray, margin: float = 0.15) -> np.ndarray:
    """The face with a little context around it (what a person recognises in a thumbnail)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    x1, y1, x2, y2 = int(max(0, x1 - mx)), int(max(0, y1 - my)), int(min(w, x2 + mx)), int(min(h, y2 + my))
    return image[y1:y2, x1:x2].copy()


def thumbnail(image: np.ndarray | None, size: int = THUMB_PX) -> bytes | None:
    """A small JPEG of the face: a day's worth of people stays a few MiB in memory until the report."""
    if image is None or not image.size:
        return None
    h, w = image.shape[:2]
    scale = size / max(h, w, 1)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image)
    return data.tobytes() if ok else None


# --- the counting line --------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """--line x1,y1,x2,y2 in pixels, or in fractions of the frame when every value is within [0, 1].

    'in' is a crossing from the left to the right of the line as seen walking from (x1, y1) to
    (x2, y2): for a line drawn left to right, downwards in the image; 'out' is the other way.
    """

    coords: tuple[float, float, float, float]
    fractions: bool

    @classmethod
    def parse(cls, text: str) -> Line:
        try:
            coords = tuple(float(v) for v in text.split(","))
        except ValueError:
            coords = ()
        if len(coords) != 4 or not all(np.isfinite(coords)):
            raise UserError(f"--line must be x1,y1,x2,y2 (pixels, or fractions of the frame), not {text!r}")
        if coords[:2] == coords[2:]:
            raise UserError(f"--line {text}: the two ends are the same point")
        return cls(coords, all(0 <= v <= 1 for v in coords))  # type: ignore[arg-type]

    def points(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        x1, y1, x2, y2 = self.coords
        if self.fractions:
            x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
        return np.array([x1, y1]), np.array([x2, y2])

    def misses(self, width: int, height: int) -> bool:
        """Whether the line lies wholly outside a width x height frame (pixels given for another camera):
        no one in that frame can cross it."""
        a, b = self.points(width, height)
        inside, _, _ = cv2.clipLine((0, 0, width, height), tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b))
        return not inside

    def side(self, p: np.ndarray, width: int, height: int) -> float:
        """> 0 right of the line, < 0 left of it, 0 on it."""
        return _side(*self.points(width, height), p)

    def crossing(self, before: np.ndarray, after: np.ndarray, width: int, height: int) -> str | None:
        """'in', 'out' or None for a move from `before` to `after` (box centres off the line: the people
        stage keeps the last centre that was off it, so touching the line and going on counts once)."""
        a, b = self.points(width, height)
        s1, s2 = _side(a, b, before), _side(a, b, after)
        if s1 == 0 or s2 == 0 or (s1 > 0) == (s2 > 0):
            return None
        t1, t2 = _side(before, after, a), _side(before, after, b)
        if (t1 > 0) == (t2 > 0) and t1 != 0 and t2 != 0:
            return None  # crossed the line's extension, not the line itself
        return "in" if s2 > 0 else "out"


def _side(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> float:
    """The sign of the cross product: which side of the line p->q the point r is on."""
    return float((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))


# --- people ---------------------------------------------------------------------------------------


@dataclass
class Person:
    track_id: int
    source: str
    first_frame: int
    first_time: float  # seconds into the source (the monitor's clock)
    first_seen_at: str  # wall-clock time it was first seen, ISO 8601
    last_frame: int = 0
    last_time: float = 0.0
    frames: int = 0
    weights: Counter = field(default_factory=Counter)  # class id -> sum of confidences
    counts: Counter = field(default_factory=Counter)  # class id -> frames
    verdict: int | None = None
    verdict_since: float = 0.0
    best_score: float = -1.0
    best_crop: np.ndarray | None = None
    thumb: bytes | None = None  # JPEG
    crop_path: str = ""
    alerted: bool = False
    centre: np.ndarray | None = None
    crossings: list[tuple[str, int]] = field(default_factory=list)  # (direction, frame)

    def share(self) -> float:
        """The share of this person's frames in which the face was given the verdict's class."""
        return self.counts[self.verdict] / self.frames if self.verdict is not None and self.frames else 0.0

    def confidence(self) -> float:
        """Mean confidence of the frames that agree with the verdict."""
        n = self.counts[self.verdict] if self.verdict is not None else 0
        return self.weights[self.verdict] / n if n else 0.0


@dataclass
class Alert:
    """One alert, as raised: the record written to alerts.jsonl and the images to save with it."""

    person: Person
    frame: Frame
    box: np.ndarray
    confidence: float
    time: str


@dataclass(frozen=True)
class MonitorSettings:
    min_frames: int = MIN_FRAMES
    line: Line | None = None
    alert_classes: tuple[str, ...] = ()
    alert_after: float = ALERT_AFTER_S
    lost_seconds: float = LOST_SECONDS * 1.5  # a little longer than the tracker keeps a lost track
    keep_images: bool = True  # False with --privacy counts: not even a crop in memory


class PeopleCounter:
    """Follows tracked faces; hands finished people and raised alerts to the sinks through queues."""

    def __init__(self, names: tuple[str, ...], settings: MonitorSettings = MonitorSettings()):
        unknown = [c for c in settings.alert_classes if c not in names]
        if unknown:
            raise UserError(f"--alert: unknown class {unknown[0]!r}; the model's classes are {', '.join(names)}")
        self.names = names
        self.settings = settings
        self.alert_ids = {names.index(c) for c in settings.alert_classes}
        self.active: dict[int, Person] = {}
        self.people: list[Person] = []  # left the view, with a verdict: the people counted
        self.left: list[Person] = []  # finished people the people sink has not written yet
        self.alerts: list[Alert] = []  # raised alerts the alert sink has not handled yet
        self.alerted: list[Alert] = []  # every alert raised
        self.short_tracks = 0
        # People --retain took out of the tables and the report: still seen by this run, so still in its summary.
        self.retired: Counter = Counter()  # verdict -> people
        self.retired_crossings: dict[str, Counter] = {"in": Counter(), "out": Counter()}
        self.key: str | None = None
        self.images_seen = 0

    # -- the clock: seconds into the source; an image sequence is taken as DEFAULT_FPS frames a second
    def clock(self, frame: Frame) -> float:
        return self.images_seen / DEFAULT_FPS if frame.kind == "image" else frame.timestamp

    def __call__(self, frame: Frame, det: Detections) -> Detections:
        if det.tracker_id is None:
            return det
        key = sequence_key(frame)
        if key != self.key:
            self.finish_all()
            self.key = key
            self.images_seen = 0
        now = self.clock(frame)
        number = self.images_seen if frame.kind == "image" else frame.index  # an image's place in its folder
        h, w = frame.image.shape[:2]
        for i in np.flatnonzero(det.tracker_id >= 0):
            self._see(int(det.tracker_id[i]), frame, number, now, det.xyxy[i], int(det.class_id[i]), float(det.confidence[i]), w, h)
        for track_id, person in list(self.active.items()):
            if now - person.last_time > self.settings.lost_seconds:
                self._finish(self.active.pop(track_id))
        if frame.kind == "image":
            self.images_seen += 1
        return det

    def _see(self, track_id: int, frame: Frame, number: int, now: float, box: np.ndarray, cls: int, conf: float,
             w: int, h: int) -> None:
        person = self.active.get(track_id)
        if person is None:
            person = self.active[track_id] = Person(track_id, frame.source, number, now, now_iso())
        person.last_frame, person.last_time = number, now
        person.frames += 1
        person.weights[cls] += conf
        person.counts[cls] += 1
        score = float((box[2] - box[0]) * (box[3] - box[1])) * conf  # the largest, most confident view
        if score > person.best_score and self.settings.keep_images:
            person.best_score = score
            person.best_crop = crop_box(frame.image, box)
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], float)
        line = self.settings.line
        if line is not None and person.centre is not None:
            direction = line.crossing(person.centre, centre, w, h)
            if direction:
                person.crossings.append((direction, number))
        if line is None or line.side(centre, w, h) != 0:
            person.centre = centre  # a centre on the line is not a side: the next move decides
        if person.frames >= self.settings.min_frames:
            verdict = max(person.weights, key=lambda c: (person.weights[c], -c))
            if verdict != person.verdict:
                person.verdict, person.verdict_since = verdict, now
        if (person.verdict in self.alert_ids and not person.alerted
                and now - person.verdict_since >= self.settings.alert_after):
            person.alerted = True
            alert = Alert(person, frame, box.copy(), person.confidence(), now_iso())
            self.alerts.append(alert)
            self.alerted.append(alert)

    def _finish(self, person: Person) -> None:
        if person.verdict is None:
            self.short_tracks += 1
            return
        person.thumb = thumbnail(person.best_crop)
        self.people.append(person)
        self.left.append(person)

    def finish_all(self) -> None:
        """Everyone still in view is counted as having left: the end of a source, or of the run."""
        for track_id in list(self.active):
            self._finish(self.active.pop(track_id))

    def retire(self, keep: Callable[[Person], bool]) -> None:
        """--retain: the people `keep` says no leave the list the tables and report are drawn from; the summary
        still counts them (this run saw them)."""
        kept = []
        for person in self.people:
            if keep(person):
                kept.append(person)
                continue
            self.retired[self.verdict_name(person)] += 1
            for direction, _ in person.crossings:
                self.retired_crossings[direction][self.verdict_name(person)] += 1
        self.people = kept

    def take_left(self) -> list[Person]:
        out, self.left = self.left, []
        return out

    def take_alerts(self) -> list[Alert]:
        out, self.alerts = self.alerts, []
        return out

    # -- what the summary, window and report show
    def verdict_name(self, person: Person) -> str:
        return self.names[person.verdict] if person.verdict is not None else "pending"

    def everyone(self) -> list[Person]:
        """People counted so far: those who left, then those in view with a verdict."""
        return self.people + [p for p in self.active.values() if p.verdict is not None]

    def by_verdict(self, people: list[Person] | None = None) -> Counter:
        return Counter(self.verdict_name(p) for p in (self.everyone() if people is None else people))

    def compliance(self, people: list[Person] | None = None) -> float | None:
        counts = self.by_verdict(people)
        total = sum(counts.values())
        return counts.get(COMPLIANT, 0) / total if total else None

    def line_counts(self) -> dict[str, Counter]:
        out = {"in": Counter(), "out": Counter()}
        for person in self.everyone():
            for direction, _ in person.crossings:
                out[direction][self.verdict_name(person)] += 1
        return out

    def in_view(self) -> int:
        return sum(1 for p in self.active.values() if p.frames >= self.settings.min_frames)

    def lines(self) -> list[str]:
        """The summary: people, not frames -- every one this run saw, those --retain has since removed included."""
        counts = self.by_verdict() + self.retired
        total = sum(counts.values())
        per = ", ".join(f"{counts[n]} {n}" for n in self.names if counts.get(n)) or "none"
        share = counts.get(COMPLIANT, 0) / total if total else None
        out = [f"people: {total} seen ({per})" + (f", {share:.0%} wearing a mask correctly" if share is not None else "")
               + f"; {self.in_view()} in view at the end"]
        if self.settings.line is not None:
            crossed = {d: c + self.retired_crossings[d] for d, c in self.line_counts().items()}
            out.append("line: " + "; ".join(f"{d} {sum(c.values())}" + (f" ({', '.join(f'{v} {k}' for k, v in sorted(c.items()))})" if c else "")
                                            for d, c in crossed.items()))
        return out

    def overlay_lines(self) -> list[tuple[str, str | None]]:
        """(text, class name for its colour) for the live window."""
        counts = self.by_verdict()
        share = self.compliance()
        lines: list[tuple[str, str | None]] = [(f"in view: {self.in_view()}", None), (f"people seen: {sum(counts.values())}", None)]
        lines += [(f"  {n}: {counts.get(n, 0)}", n) for n in self.names]
        if share is not None:
            lines.append((f"mask worn correctly: {share:.0%}", None))
        if self.settings.line is not None:
            lines += [(f"line {d}: {sum(c.values())}", None) for d, c in self.line_counts().items()]
        return lines

