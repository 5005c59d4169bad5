"""The YOLO label format: one `class x_center y_center width height` line per box, normalised to [0, 1].

The lowest layer of the package (no numpy, no OpenCV): the dataset tools (maskdet.data), the detector's
records (maskdet.inference.detections), --save-txt (YoloTxtSink) and pre-labelling all read and write
lines through this one module. Whole label files, with their checks and repairs, are maskdet.data.labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class Severity(str, Enum):
    ERROR = "error"  # the line or file is unusable as it is; check exits non-zero
    FIXABLE = "fixable"  # wrong, but --fix repairs it safely (clip, drop)
    WARNING = "warning"  # worth knowing, does not block training


@dataclass(frozen=True)
class Issue:
    path: Path
    line: int | None
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.severity.value}: {self.message} [{self.code}]"


@dataclass(frozen=True)
class Box:
    """A labelled box in YOLO's normalised centre format."""

    cls: int
    x: float
    y: float
    w: float
    h: float

    def to_line(self) -> str:
        return f"{self.cls} {self.x:.6f} {self.y:.6f} {self.w:.6f} {self.h:.6f}"

    @property
    def edges(self) -> tuple[float, float, float, float]:
        return self.x - self.w / 2, self.y - self.h / 2, self.x + self.w / 2, self.y + self.h / 2

    @classmethod
    def from_edges(cls, class_id: int, x1: float, y1: float, x2: float, y2: float) -> Box:
        return cls(class_id, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)

    def clipped(self) -> Box:
        x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in self.edges)
        return Box.from_edges(self.cls, x1, y1, x2, y2)


def _parse_float(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def parse_label_line(text: str, number: int, path: Path, num_classes: int | None) -> tuple[Box | None, list[Issue]]:
    """Parse one stripped, non-blank line. Returns the box (None if unusable) and the line's issues."""

    def issue(sev: Severity, code: str, msg: str) -> Issue:
        return Issue(path, number, sev, code, msg)

    fields = text.split()
    if len(fields) != 5:
        hint = " (a 6th field looks like a confidence: use --save-txt without --save-conf)" if len(fields) == 6 else ""
        return None, [issue(Severity.ERROR, "fields", f"expected 5 fields 'class x y w h', got {len(fields)}{hint}")]
    values = [_parse_float(t) for t in fields]
    bad = [fields[i] for i, v in enumerate(values) if v is None]
    if bad:
        return None, [issue(Severity.ERROR, "number", f"not a number: {bad[0][:40]!r}")]
    if not all(math.isfinite(v) for v in values):
        return None, [issue(Severity.ERROR, "nan", "NaN or infinite value")]
    cls_value, x, y, w, h = values
    if cls_value != int(cls_value) or cls_value < 0:
        return None, [issue(Severity.ERROR, "class", f"class id must be a non-negative integer, got {fields[0][:20]}")]
    cls = int(cls_value)
    if num_classes is not None and cls >= num_classes:
        return None, [issue(Severity.ERROR, "class", f"class id {cls} out of range (data.yaml has {num_classes} classes: 0..{num_classes - 1})")]
    return Box(cls, x, y, w, h), []


def format_label_text(boxes: list[Box]) -> str:
    return "".join(f"{b.to_line()}\n" for b in boxes)


def label_line(box: Box, confidence: float | None = None, track_id: int | None = None) -> str:
    """One line as detect.py --save-txt writes it: with --save-conf the confidence after the box, and with
    --track the ID last (Ultralytics' track layout). Only the plain 5-field line is a training label."""
    line = box.to_line()
    if confidence is not None:
        line += f" {confidence:.4f}"
    if track_id is not None:
        line += f" {int(track_id)}"
    return line
