"""YOLO label files: one `class x_center y_center width height` line per box, normalised to [0, 1].

The parser never raises on content: every problem becomes an Issue with its line number, so one
bad file (or one bad line) never stops a check of thousands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from maskdet.fileio import TEXT_FILE_LIMIT, read_bytes_bounded

# The format itself (Box, one line's parser and writer) lives in maskdet.yolo_format, low enough for
# every layer to import; these names stay importable from here.
from maskdet.yolo_format import Box, Issue, Severity, format_label_text, parse_label_line  # noqa: F401

# Edges may stray this far outside [0, 1] from float rounding before we call it a problem.
EDGE_TOLERANCE = 1e-6
# Two boxes of the same class whose coordinates agree this closely are the same box labelled twice.
DUPLICATE_TOLERANCE = 1e-6
# How far a box's numbers may leave [0, 1] and still be a box that --fix clips: a centre within [-0.5, 1.5],
# sides up to 1.5 images. A face cut by the photo's edge, or dragged past it in labelImg, stays well inside
# that. Beyond it the numbers are not YOLO's 0-1 fractions at all (mostly pixel coordinates: `1 150 120 30 40`),
# and clipping would silently turn the box into a full-image box or drop it: an error for a person to fix.
OVERHANG_LIMIT = 0.5


@dataclass
class LabelLine:
    """One non-blank line: its number, its original text and, when it parsed, its box."""

    number: int
    text: str
    box: Box | None = None
    # What --fix does with it: "keep", "clip" or "drop"; "reject" is an error no repair is safe for: kept
    # verbatim like an unparseable line, and given to no trainer. Unparseable lines are kept verbatim.
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
            if line.box is None or line.action in ("drop", "reject"):
                continue
            out.append(line.box.clipped() if line.action == "clip" else line.box)
        return out

    @property
    def needs_fix(self) -> bool:
        return any(line.action in ("clip", "drop") for line in self.lines)

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


def _as_written(box: Box) -> Box:
    """The box as to_line() writes it (6 decimals): what a re-read of the fixed file sees."""
    return Box(box.cls, *(float(f"{v:.6f}") for v in (box.x, box.y, box.w, box.h)))


def _not_fractions(box: Box, number: int, path: Path) -> Issue | None:
    """An error when the box's numbers lie beyond OVERHANG_LIMIT: not a box slightly over the edge, but numbers
    in another unit, which no clipping repairs."""
    values = f"x={box.x:g} y={box.y:g} w={box.w:g} h={box.h:g}"
    if max(box.x, box.y, box.w, box.h) > 1 + OVERHANG_LIMIT:
        return Issue(path, number, Severity.ERROR, "pixels",
                     f"{values} looks like pixel coordinates, not YOLO's 0-1 fractions of the image size: divide by "
                     "the image's width and height or relabel it (--fix leaves it alone)")
    if min(box.x, box.y) < -OVERHANG_LIMIT:
        return Issue(path, number, Severity.ERROR, "far-outside",
                     f"{values}: centre far outside the image, not YOLO's 0-1 fractions of the image size: relabel it "
                     "(--fix leaves it alone)")
    return None


def _classify_box(box: Box, number: int, path: Path) -> tuple[str, Issue | None]:
    """Decide what the safe repair of a parsed box is: keep it, clip it to the image, drop it, or none (reject)."""
    problem = _not_fractions(box, number, path)
    if problem is not None:
        return "reject", problem
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
        if line.action in ("drop", "reject"):
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
        data = read_bytes_bounded(path, TEXT_FILE_LIMIT)
    except OSError as exc:
        result = LabelFile(path)
        result.issues.append(Issue(path, None, Severity.ERROR, "unreadable", f"cannot read: {exc.strerror or exc}"))
        return result
    return parse_label_bytes(data, path, num_classes)
