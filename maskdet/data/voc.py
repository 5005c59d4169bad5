"""Pascal VOC XML (labelImg's default format, and the Kaggle face-mask dataset's) to YOLO boxes."""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from maskdet.data.labels import Box
from maskdet.errors import UserError
from maskdet.fileio import TEXT_FILE_LIMIT, read_bytes_bounded

if TYPE_CHECKING:
    from lxml import etree


@functools.cache
def _parser():
    """Refuse anything but plain XML: no entities, no DTDs from the network. lxml is imported only when XML is
    read, so the scripts that import this module for its types still answer --help on the light install."""
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)


@dataclass(frozen=True)
class VocObject:
    name: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    line: int | None


@dataclass(frozen=True)
class VocAnnotation:
    path: Path
    filename: str | None
    width: int | None
    height: int | None
    objects: tuple[VocObject, ...]
    skipped: tuple[str, ...] = ()  # one 'file:line: why' per <object> that could not be read (the others are kept)


def _text(elem: etree._Element, tag: str) -> str | None:
    child = elem.find(tag)
    return child.text.strip() if child is not None and child.text is not None else None


def _number(elem: etree._Element, tag: str, path: Path) -> float:
    raw = _text(elem, tag)
    if raw is None:
        raise UserError(f"<{tag}> missing", path, elem.sourceline)
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"<{tag}> is not a number: {raw!r}", path, elem.find(tag).sourceline) from None
    if not math.isfinite(value):  # float() accepts 'nan' and 'inf'; neither is a pixel coordinate or size
        raise UserError(f"<{tag}> is not a finite number: {raw!r}", path, elem.find(tag).sourceline)
    return value


def parse_voc(path: str | Path) -> VocAnnotation:
    """Parse one VOC file; any problem is a UserError naming the file and line."""
    from lxml import etree

    path = Path(path)
    try:
        root = etree.fromstring(read_bytes_bounded(path, TEXT_FILE_LIMIT), _parser())
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", path) from None
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else None
        raise UserError(f"not valid XML: {exc.msg}", path, line) from None
    if root.tag != "annotation":
        raise UserError(f"root element is <{root.tag}>, expected <annotation>", path, root.sourceline)
    width = height = None
    size = root.find("size")
    if size is not None:
        try:
            width, height = int(_number(size, "width", path)), int(_number(size, "height", path))
        except UserError:
            width = height = None  # the image's own size is used anyway
    objects, skipped = [], []
    for obj in root.iter("object"):  # one bad object costs that box only, not the photo's other faces
        try:
            objects.append(_parse_object(obj, path))
        except UserError as exc:
            skipped.append(f"skipped box: {exc}")
    return VocAnnotation(path, _text(root, "filename"), width, height, tuple(objects), tuple(skipped))


def _parse_object(obj: etree._Element, path: Path) -> VocObject:
    name = _text(obj, "name")
    if not name:
        raise UserError("<object> without a <name>", path, obj.sourceline)
    bnd = obj.find("bndbox")
    if bnd is None:
        raise UserError(f"<object> '{name}' has no <bndbox>", path, obj.sourceline)
    return VocObject(name, *(_number(bnd, t, path) for t in ("xmin", "ymin", "xmax", "ymax")), line=bnd.sourceline)


@dataclass
class ConversionStats:
    """What happened to the boxes, so the summary can say it (and tests can check it)."""

    boxes_in: int = 0
    boxes_out: int = 0
    clipped: int = 0
    dropped: int = 0
    duplicates: int = 0  # of `dropped`: a box already written for the same photo
    per_class: Counter = field(default_factory=Counter)
    unknown: Counter = field(default_factory=Counter)
    unknown_files: dict[str, list[str]] = field(default_factory=dict)  # class -> the files that use it
    notes: list[str] = field(default_factory=list)

    def add_unknown(self, name: str, file: str | Path) -> None:
        self.unknown[name] += 1
        files = self.unknown_files.setdefault(name, [])
        if str(file) not in files:
            files.append(str(file))

    def unknown_summary(self) -> str:
        """"'mask' x3 in a.xml, b.xml and 1 more file; 'hat' x1 in c.xml": where to look, not only what."""
        parts = []
        for name, count in self.unknown.most_common():
            files = self.unknown_files.get(name, [])
            shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more file{'s' * (len(files) > 4)}" if len(files) > 3 else "")
            parts.append(f"'{name}' x{count}" + (f" in {shown}" if shown else ""))
        return "; ".join(parts)

    def add(self, other: ConversionStats) -> None:
        self.boxes_in += other.boxes_in
        self.boxes_out += other.boxes_out
        self.clipped += other.clipped
        self.dropped += other.dropped
        self.duplicates += other.duplicates
        self.per_class.update(other.per_class)
        self.unknown.update(other.unknown)
        for name, files in other.unknown_files.items():
            mine = self.unknown_files.setdefault(name, [])
            mine.extend(f for f in files if f not in mine)
        self.notes.extend(other.notes)


def clip_to_image(
    edges: tuple[float, float, float, float], image_wh: tuple[float, float], stats: ConversionStats,
    where: str, name: str, image: str,
) -> tuple[float, float, float, float] | None:
    """The box's corners clipped to the image and normalised to [0, 1], or None when it is dropped.

    The one code path every importer (VOC pixels, YOLO fractions with image_wh (1, 1)) runs a box through, so
    each clip and each drop is counted in `stats` and noted as `where: ...` (file:line), none silently.
    Empty and inverted boxes are dropped, not swapped: a flipped box is a labelling slip whose intended
    extent is unknown. `image` names the bounds in the notes ("the 100x50 image").
    """
    width, height = image_wh
    x1, y1, x2, y2 = edges
    if x2 <= x1 or y2 <= y1:
        stats.dropped += 1
        stats.notes.append(f"{where}: dropped empty or inverted box '{name}' ({x1:g},{y1:g})-({x2:g},{y2:g})")
        return None
    cx1, cx2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    cy1, cy2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    normalised = cx1 / width, cy1 / height, cx2 / width, cy2 / height
    # Judged as the label line writes it (6 decimals): a sliver that rounds to zero size would be a degenerate box.
    if round(normalised[2] - normalised[0], 6) <= 0 or round(normalised[3] - normalised[1], 6) <= 0:
        stats.dropped += 1
        stats.notes.append(f"{where}: dropped box '{name}' lying outside {image}" if (cx1, cy1, cx2, cy2) != edges
                           else f"{where}: dropped empty box '{name}' (under a millionth of {image})")
        return None
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        stats.clipped += 1
        stats.notes.append(f"{where}: clipped box '{name}' to {image}")
    return normalised


def voc_to_boxes(
    ann: VocAnnotation,
    image_size: tuple[int, int],
    class_ids: dict[str, int],
    rename: dict[str, str] | None = None,
    trim_top: float = 0.0,
) -> tuple[list[Box], ConversionStats]:
    """Convert pixel corners to normalised YOLO boxes of the real image size.

    trim_top shaves that fraction of each box's height off its top: datasets that draw faces
    with more forehead (ILC 2021: about 15 % taller, so 0.13) then match this project's boxes.

    Boxes that cross the image edge are clipped (the Kaggle data has xmax = width + 1); empty,
    inverted and outside ones are dropped (clip_to_image, which counts and notes each).
    """
    width, height = image_size
    rename = rename or {}
    stats = ConversionStats()
    stats.boxes_in = stats.dropped = len(ann.skipped)
    stats.notes.extend(ann.skipped)
    boxes = []
    for obj in ann.objects:
        stats.boxes_in += 1
        name = rename.get(obj.name, obj.name)
        if name not in class_ids:
            stats.add_unknown(obj.name, ann.path)
            continue
        top = obj.ymin + trim_top * (obj.ymax - obj.ymin)  # an inverted box stays inverted: trim_top < 1
        edges = clip_to_image((obj.xmin, top, obj.xmax, obj.ymax), (width, height), stats,
                              f"{ann.path}:{obj.line}", obj.name, f"the {width}x{height} image")
        if edges is None:
            continue
        boxes.append(Box.from_edges(class_ids[name], *edges))
        stats.per_class[name] += 1
        stats.boxes_out += 1
    return boxes, stats
