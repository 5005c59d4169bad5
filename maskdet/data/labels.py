"""YOLO label files: one `class x_center y_center width height` line per box, normalised to [0, 1].

The parser never raises on content: every problem becomes an Issue with its line number, so one
bad file (or one bad line) never stops a check of thousands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

# Edges may stray this far outside [0, 1] from float rounding before we call it a problem.
EDGE_TOLERANCE = 1e-6
# Two boxes of the same class whose coordinates agree this closely are the same box labelled twice.
DUPLICATE_TOLERANCE = 1e-6


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


@dataclass
class LabelLine:
    """One non-blank line: its number, its original text and, when it parsed, its box."""

    number: int
    text: str
    box: Box | None = None
    # What --fix does with it: "keep", "clip" or "drop". Unparseable lines are kept verbatim.
    action: str = "keep"


@dataclass
class LabelFile:
    path: Path
    lines: list[LabelLine] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def boxes(self) -> list[Box]:
        """The boxes a trainer would use: parsed lines only, after the safe repairs."""
        out = []
        for line in self.lines:
            if line.box is None or line.action == "drop":
                continue
            out.append(line.box.clipped() if line.action == "clip" else line.box)
        return out

    @property
    def needs_fix(self) -> bool:
        return any(line.action != "keep" for line in self.lines)

    def fixed_text(self) -> str:
        """The file after safe repairs: clipped boxes rewritten, dropped ones removed, the rest as is."""
        out = []
        for line in self.lines:
            if line.action == "drop":
                continue
            if line.action == "clip" and line.box is not None:
                out.append(line.box.clipped().to_line())
            else:
                out.append(line.text)
        return "".join(f"{text}\n" for text in out)


def decode_label_bytes(data: bytes, path: Path) -> tuple[str, list[Issue]]:
    """Label files are UTF-8 (a BOM is tolerated); anything else is reported, then read leniently."""
    issues = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(Issue(path, None, Severity.ERROR, "encoding", f"not UTF-8 text (byte {exc.start})"))
        text = data.decode("utf-8", errors="replace")
    if "\x00" in text:
        issues.append(Issue(path, None, Severity.ERROR, "binary", "contains NUL bytes: not a text label file"))
        text = text.replace("\x00", " ")
    return text, issues


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


def _as_written(box: Box) -> Box:
    """The box as to_line() writes it (6 decimals): what a re-read of the fixed file sees."""
    return Box(box.cls, *(float(f"{v:.6f}") for v in (box.x, box.y, box.w, box.h)))


def _classify_box(box: Box, number: int, path: Path) -> tuple[str, Issue | None]:
    """Decide what the safe repair of a parsed box is: keep it, clip it to the image, or drop it."""
    if box.w <= 0 or box.h <= 0:
        return "drop", Issue(path, number, Severity.FIXABLE, "degenerate", f"zero or negative size (w={box.w:g}, h={box.h:g})")
    x1, y1, x2, y2 = box.edges
    if min(x1, y1) < -EDGE_TOLERANCE or max(x2, y2) > 1 + EDGE_TOLERANCE:
        # Judge the clipped box as fixed_text() will write it: a sliver that rounds to zero size
        # would otherwise be rewritten as a degenerate box, and --fix would not be idempotent.
        clipped = _as_written(box.clipped())
        if clipped.w <= 0 or clipped.h <= 0:
            return "drop", Issue(path, number, Severity.FIXABLE, "outside", "box lies (all but a sliver) outside the image")
        return "clip", Issue(path, number, Severity.FIXABLE, "bounds", "box extends outside the image (coordinates outside [0, 1])")
    return "keep", None


def _same_box(a: Box, b: Box) -> bool:
    return a.cls == b.cls and all(abs(p - q) <= DUPLICATE_TOLERANCE for p, q in zip((a.x, a.y, a.w, a.h), (b.x, b.y, b.w, b.h)))


def parse_label_text(text: str, path: str | Path = "<labels>", num_classes: int | None = None) -> LabelFile:
    """Parse the text of a label file into lines, boxes and issues; never raises."""
    path = Path(path)
    result = LabelFile(path)
    kept: list[Box] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        line = LabelLine(number, stripped)
        result.lines.append(line)
        box, issues = parse_label_line(stripped, number, path, num_classes)
        result.issues.extend(issues)
        if box is None:
            continue
        line.box = box
        line.action, problem = _classify_box(box, number, path)
        if problem is not None:
            result.issues.append(problem)
        if line.action == "drop":
            continue
        effective = _as_written(box.clipped()) if line.action == "clip" else box  # as fixed_text() writes it
        if any(_same_box(effective, other) for other in kept):
            line.action = "drop"
            result.issues.append(Issue(path, number, Severity.FIXABLE, "duplicate", "duplicate of an earlier box"))
            continue
        kept.append(effective)
    return result


def parse_label_bytes(data: bytes, path: str | Path = "<labels>", num_classes: int | None = None) -> LabelFile:
    path = Path(path)
    text, issues = decode_label_bytes(data, path)
    result = parse_label_text(text, path, num_classes)
    result.issues[:0] = issues
    return result


def read_label_file(path: str | Path, num_classes: int | None = None) -> LabelFile:
    """Read and parse a label file; an unreadable file becomes an error issue, not an exception."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        result = LabelFile(path)
        result.issues.append(Issue(path, None, Severity.ERROR, "unreadable", f"cannot read: {exc.strerror or exc}"))
        return result
    return parse_label_bytes(data, path, num_classes)


def format_label_text(boxes: list[Box]) -> str:
    return "".join(f"{b.to_line()}\n" for b in boxes)
