"""What run() adds with --track: one stage call per frame, the monitoring sinks, and the lines it prints."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from maskdet.inference.detections import Detections, Frame
from maskdet.inference.sinks import Sink
from maskdet.inference.visualize import class_color
from maskdet.interrupts import interrupts_held
from maskdet.monitoring.people import Line, MonitorSettings, PeopleCounter
from maskdet.monitoring.sinks import AlertSink, CountsSink, Log, PeopleCsvSink, ReportSink
from maskdet.monitoring.tracking import Tracker
from maskdet.monitoring.webhook import check_url
from maskdet.privacy.counts import PERIOD_S
from maskdet.privacy.retention import age_of

LINE_COLOR = (255, 255, 0)  # BGR cyan: no class uses it


class Monitor:
    """Tracker and people counter as one pipeline stage, between the detector and the sinks."""

    def __init__(self, names: tuple[str, ...], settings: MonitorSettings, alert_url: str | None = None,
                 privacy: str = "off", period_s: float = PERIOD_S):
        self.privacy = privacy  # maskdet.privacy's level: which sinks, and whether faces are kept at all
        self.period_s = period_s
        if alert_url is not None:
            check_url(alert_url)  # before the run folder or the model: a typo is a one-line error at once
        self.alert_url = alert_url
        if privacy == "counts":
            settings = replace(settings, keep_images=False)
        self.people = PeopleCounter(names, settings)
        self.tracker = Tracker()
        self.alerts: AlertSink | None = None

    @classmethod
    def from_args(cls, names: tuple[str, ...], line: str | None, min_frames: int, alert: list[str] | None,
                  alert_after: float, alert_url: str | None, privacy: str = "off", period_s: float = PERIOD_S) -> Monitor:
        from maskdet.errors import UserError
        from maskdet.settings import MAX_ALERT_AFTER_S, MAX_MIN_FRAMES

        if not 1 <= min_frames <= MAX_MIN_FRAMES:
            raise UserError(f"--min-frames must be 1 to {MAX_MIN_FRAMES:,}")
        if not 0 <= alert_after <= MAX_ALERT_AFTER_S:  # NaN fails too
            raise UserError(f"--alert-after must be 0 to {MAX_ALERT_AFTER_S:g} seconds (a day)")
        if alert_url and not alert:
            raise UserError("--alert-url needs --alert CLASS ... (which verdicts to alert on)")
        settings = MonitorSettings(min_frames, Line.parse(line) if line else None, tuple(alert or ()), alert_after)
        return cls(names, settings, alert_url, privacy, period_s)

    def __call__(self, frame: Frame, det: Detections) -> Detections:
        with interrupts_held():  # the tracker and the people never disagree about a frame
            det = self.tracker(frame, det)
            return self.people(frame, det)

    def open_sinks(self, stack: ExitStack, run_dir: Path, title: str, log: Log) -> list[Sink]:
        """Entered report first, so closed last: it reads the final people and alerts.
        --privacy counts: counts.csv/json instead of people.csv, and a report of counts only."""
        self.alerts = AlertSink(run_dir, self.people, log, self.alert_url, privacy=self.privacy)
        counts = CountsSink(run_dir, self.people, self.period_s) if self.privacy == "counts" else None
        report = stack.enter_context(ReportSink(run_dir / "report.html", self.people, self.alerts, title, counts))
        stack.enter_context(self.alerts)
        people = stack.enter_context(counts or PeopleCsvSink(run_dir, self.people, crops=self.privacy == "off"))
        self.report = report
        self.tables = people
        return [people, self.alerts, report]

    def prune(self, older_than_s: float) -> int:
        """--retain inside this run: rows and people older than the duration leave its tables and its report."""
        self.people.retire(lambda p: (age_of(p.first_seen_at) or 0.0) <= older_than_s)  # the summary still counts them
        return self.tables.prune(older_than_s) + self.alerts.prune(older_than_s)

    def line_problem(self, width: int, height: int) -> str | None:
        """A warning when --line in pixels lies outside a frame of this size: nothing would be counted, silently."""
        line = self.people.settings.line
        if line is None or not line.misses(width, height):
            return None
        return (f"--line {','.join(f'{v:g}' for v in line.coords)} lies outside the {width}x{height} frame: no crossing "
                "can be counted (give pixels of this frame, or fractions 0-1 of it)")

    def annotate(self, image: np.ndarray) -> np.ndarray:
        """The counting line and its totals on the annotated frame."""
        line = self.people.settings.line
        if line is not None:
            h, w = image.shape[:2]
            a, b = line.points(w, h)
            cv2.line(image, tuple(int(v) for v in a), tuple(int(v) for v in b), LINE_COLOR, 2, cv2.LINE_AA)
            counts = self.people.line_counts()
            text = f"in {sum(counts['in'].values())}  out {sum(counts['out'].values())}"
            cv2.putText(image, text, (int(a[0]) + 4, max(12, int(a[1]) - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, LINE_COLOR, 1, cv2.LINE_AA)
        return image

    def overlay(self) -> list[tuple[str, tuple[int, int, int]]]:
        """Lines for the live window: people in view now and seen so far, by verdict."""
        names = self.people.names
        return [(text, class_color(names.index(name), names) if name else (255, 255, 255))
                for text, name in self.people.overlay_lines()]

    def interrupted(self) -> None:
        self.report.interrupted = True

    def lines(self) -> list[str]:
        return self.people.lines() + (self.alerts.lines() if self.alerts else [])

