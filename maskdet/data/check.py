"""Validate a dataset before training, repair what is safe to repair, and describe it.

The scan streams one image and one label file at a time and keeps only counters and
small histograms, so memory stays flat however large the dataset is.
"""

from __future__ import annotations

import io
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from maskdet.config import TRAINING_SPLITS, DatasetConfig, class_list_mismatch, read_class_list
from maskdet.data.convert import upright_size
from maskdet.data.labels import Issue, LabelFile, Severity, read_label_file
from maskdet.errors import UserError
from maskdet.fileio import atomic_copy, atomic_write_text, content_digest, is_image, read_bytes_bounded
from maskdet.imageio import pillow_open
from maskdet.progress import progress
from maskdet.settings import image_file_limit

# Ultralytics skips images smaller than this on either side as corrupt.
MIN_IMAGE_SIDE = 10
# Box side (square root of the area, in pixels) bins: tiny faces are what this dataset is about.
SIZE_BINS = (8, 16, 32, 64, 128)
PREVIEWS_PER_SPLIT = 9


def size_bin_labels() -> list[str]:
    edges = [0, *SIZE_BINS]
    return [f"{a}-{b}px" for a, b in zip(edges, edges[1:])] + [f">={SIZE_BINS[-1]}px"]


@dataclass
class SplitStats:
    """What people look at before training, accumulated without keeping images or boxes."""

    images: int = 0
    backgrounds: int = 0
    unusable_images: int = 0
    boxes: Counter = field(default_factory=Counter)  # class id -> boxes
    images_with_class: Counter = field(default_factory=Counter)  # class id -> images containing it
    boxes_per_image: Counter = field(default_factory=Counter)  # box count -> images
    size_bins: dict[int, Counter] = field(default_factory=dict)  # class id -> bin index -> boxes
    previews: list[Path] = field(default_factory=list)
    preview_classes: set[int] = field(default_factory=set)

    def add_boxes(self, label: LabelFile, image_size: tuple[int, int] | None) -> None:
        boxes = label.boxes
        self.boxes_per_image[len(boxes)] += 1
        # Lines left out as errors (pixel coordinates, malformed) are faces no one can read yet, not "no faces".
        if not boxes and all(line.box is not None and line.action != "reject" for line in label.lines):
            self.backgrounds += 1
        for cls in {b.cls for b in boxes}:
            self.images_with_class[cls] += 1
        for b in boxes:
            self.boxes[b.cls] += 1
            if image_size is not None:
                side = math.sqrt(max(b.w * image_size[0] * b.h * image_size[1], 0.0))
                self.size_bins.setdefault(b.cls, Counter())[sum(side >= e for e in SIZE_BINS)] += 1

    @property
    def total_boxes(self) -> int:
        return sum(self.boxes.values())

    @property
    def max_boxes_per_image(self) -> int:
        return max(self.boxes_per_image, default=0)


@dataclass
class CheckReport:
    config: DatasetConfig
    splits: dict[str, SplitStats] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    fixable_labels: list[LabelFile] = field(default_factory=list)  # only files that need a repair

    def count(self, severity: Severity) -> int:
        return sum(1 for i in self.issues if i.severity is severity)

    @property
    def ok(self) -> bool:
        """Fixable problems block too: Ultralytics drops a whole image whose box leaves [0, 1]."""
        return self.count(Severity.ERROR) == 0 and self.count(Severity.FIXABLE) == 0


def inspect_image(path: Path) -> tuple[tuple[int, int] | None, bytes | None, list[Issue]]:
    """Size, content digest and problems of one image: header and chunk checks, no full decode."""
    try:
        data = read_bytes_bounded(path, image_file_limit())
    except OSError as exc:
        return None, None, [Issue(path, None, Severity.ERROR, "unreadable", f"cannot read image: {exc.strerror or exc}")]
    digest = content_digest(data)
    issues = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # PIL's size warning becomes our own line
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with pillow_open(io.BytesIO(data)) as im:
                fmt = im.format
                im.verify()
                size = upright_size(im)  # as labelImg showed it and training reads it (after verify, as Ultralytics)
    except Image.DecompressionBombError:
        return None, digest, [Issue(path, None, Severity.ERROR, "too-large", _too_large(data))]
    except UnidentifiedImageError:  # its message is a repr of our in-memory buffer: say it in words
        return None, digest, [Issue(path, None, Severity.ERROR, "corrupt", "not an image (no image format recognised)")]
    except Exception as exc:  # PIL raises many types for corrupt files
        return None, digest, [Issue(path, None, Severity.ERROR, "corrupt", f"corrupt image: {exc}")]
    if any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught):
        megapixels = size[0] * size[1] / 1e6
        issues.append(Issue(path, None, Severity.WARNING, "large",
                            f"very large image ({size[0]}x{size[1]}, {megapixels:.0f} megapixels): training decodes it whole "
                            f"and shrinks it to --imgsz anyway; downscaling it saves memory and time"))
    if min(size) < MIN_IMAGE_SIDE:
        issues.append(Issue(path, None, Severity.ERROR, "tiny", f"image is {size[0]}x{size[1]}, under {MIN_IMAGE_SIDE} px"))
    if fmt not in READ_FORMATS:
        issues.append(Issue(path, None, Severity.ERROR, "format",
                            f"a {fmt} image{_named_as(path, fmt)}: training drops it, and detect.py reads only JPEG, PNG, "
                            "BMP, WebP and TIFF; convert it to one of those"))
    elif fmt in ("JPEG", "MPO") and not data.endswith(b"\xff\xd9"):
        issues.append(_jpeg_without_end_marker(path, data))
    return size, digest, issues


# The formats both Ultralytics' loader and maskdet.imageio read (an MPO is a JPEG with extra pictures after it).
READ_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP", "TIFF"})


def _named_as(path: Path, fmt: str) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return f" named .{suffix}" if suffix and suffix not in (fmt.lower(), "jpg" if fmt == "JPEG" else "") else ""


def _jpeg_without_end_marker(path: Path, data: bytes) -> Issue:
    """A JPEG whose last bytes are not its end marker: cut short (a copy stopped midway), or with bytes after
    the picture (padding, some cameras' trailers). Decoded to tell which: only for these rare files."""
    if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
        return Issue(path, None, Severity.ERROR, "truncated",
                     "JPEG is cut short (no end marker, and it cannot be decoded): training drops it with its boxes and "
                     "detect.py cannot read it; copy it again from the original, or remove it")
    return Issue(path, None, Severity.WARNING, "jpeg-trailer",
                 "JPEG has bytes after its end marker: Ultralytics re-saves such a file in place when it trains "
                 "(the picture stays, the file changes); re-save it yourself to keep the file as training uses it")


def _too_large(data: bytes) -> str:
    """Why PIL (and so Ultralytics' loader, which opens every image with it) refuses an image, with its size."""
    limit = 2 * Image.MAX_IMAGE_PIXELS / 1e6
    Image.MAX_IMAGE_PIXELS, saved = None, Image.MAX_IMAGE_PIXELS  # only to read the header's size
    try:
        with pillow_open(io.BytesIO(data)) as im:
            width, height = im.size
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    return (f"too large for training: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
            f"{limit:.0f}-megapixel limit of PIL, which Ultralytics' loader uses; downscale it")


def _pick_previews(stats: SplitStats, image: Path, classes: set[int], num_classes: int) -> None:
    """Keep one preview slot free for each class not shown yet, so the rare class is always visible."""
    reserved = num_classes - len(stats.preview_classes)
    if classes - stats.preview_classes or len(stats.previews) < PREVIEWS_PER_SPLIT - reserved:
        if len(stats.previews) < PREVIEWS_PER_SPLIT:
            stats.previews.append(image)
            stats.preview_classes |= classes


def _note_unread_labels(images_dir: Path, labels_dir: Path, report: CheckReport) -> None:
    """Every image of the split is a background, yet a sibling labels/ folder holds .txt files: labels
    put where training does not read them (Ultralytics reads the .txt beside an image that is not
    in an images/ folder)."""
    sibling = images_dir.parent / "labels"
    if sibling != labels_dir and sibling.is_dir() and any(p.name != "classes.txt" for p in sibling.glob("*.txt")):
        report.issues.append(Issue(images_dir, None, Severity.WARNING, "labels-unread",
                                   f"no labels found beside these images, but {sibling} holds .txt files that training "
                                   f"never reads: for a folder not named images/, Ultralytics reads the .txt beside each "
                                   f"image (or rename the folders to .../images and .../labels)"))


def check_split(split: str, images_dir: Path, labels_dir: Path, num_classes: int, report: CheckReport,
                seen_digests: dict[bytes, Path]) -> SplitStats:
    stats = SplitStats()
    # An empty test split (split.py --ratios 0.8 0.2 0) blocks nothing: training never reads it.
    severity, optional = (Severity.ERROR, "") if split in TRAINING_SPLITS else \
        (Severity.WARNING, f" (training does not need it; val.py --split {split} has nothing to measure)")
    if not images_dir.is_dir():
        report.issues.append(Issue(images_dir, None, severity, "missing", f"{split} images folder does not exist{optional}"))
        return stats
    images = sorted(p for p in images_dir.iterdir() if p.is_file() and is_image(p))
    if not images:
        report.issues.append(Issue(images_dir, None, severity, "empty", f"{split} has no images{optional}"))
    stems: dict[str, Path] = {}
    for image in progress(images, desc=f"check {split}", unit="image"):
        stats.images += 1
        first = stems.setdefault(image.stem, image)
        if first != image:  # Ultralytics trains both on the one label file: the second photo gets the first's boxes
            stats.unusable_images += 1
            report.issues.append(Issue(image, None, Severity.ERROR, "shared-label",
                                       f"shares its label file {labels_dir / f'{image.stem}.txt'} with {first}: training "
                                       "gives both photos the same boxes; rename one of them (and its label)"))
            continue
        size, digest, problems = inspect_image(image)
        report.issues.extend(problems)
        if digest is not None:
            first = seen_digests.setdefault(digest, image)
            if first != image:
                report.issues.append(Issue(image, None, Severity.WARNING, "same-image",
                                           f"same file content as {first}" + (" (leaks between splits)" if first.parent != image.parent else "")))
        if size is None or any(p.severity is Severity.ERROR for p in problems):  # training drops it, boxes and all
            stats.unusable_images += 1
            continue
        label_path = labels_dir / f"{image.stem}.txt"
        if label_path.exists():
            label = read_label_file(label_path, num_classes)
            report.issues.extend(label.issues)
            if label.needs_fix:
                report.fixable_labels.append(label)
        else:
            label = LabelFile(label_path)  # a background image: allowed, counted
        stats.add_boxes(label, size)
        _pick_previews(stats, image, {b.cls for b in label.boxes}, num_classes)
    if stats.images and stats.boxes_per_image[0] == stats.images:
        _note_unread_labels(images_dir, labels_dir, report)
    if labels_dir.is_dir():
        for orphan in sorted(p for p in labels_dir.glob("*.txt") if p.stem not in stems and p.name != "classes.txt"):
            report.issues.append(Issue(orphan, None, Severity.WARNING, "orphan", "label file without an image (ignored by training)"))
        classes_txt = labels_dir / "classes.txt"
        if classes_txt.exists():
            try:
                mismatch = class_list_mismatch(read_class_list(classes_txt), report.config.names)
            except UserError as exc:  # not UTF-8, or unreadable: one issue, and the scan goes on
                mismatch = None
                report.issues.append(Issue(classes_txt, None, Severity.ERROR, "classes-txt", _unreadable_class_list(
                    classes_txt, str(exc).removeprefix(f"{classes_txt}: "))))
            if mismatch:
                report.issues.append(Issue(classes_txt, None, Severity.ERROR, "classes-txt",
                                           f"disagrees with data.yaml: {mismatch}; labels written with it use the wrong ids"))
    return stats


def _unreadable_class_list(path: Path, why: str) -> str:
    """What to do about a classes.txt that cannot be read as text: Notepad's "Unicode" saves UTF-16."""
    try:
        with path.open("rb") as f:
            start = f.read(2)
    except OSError:
        start = b""
    if start in (b"\xff\xfe", b"\xfe\xff"):
        return "saved as UTF-16 (Notepad's \"Unicode\"), not UTF-8: save it again as UTF-8, one class a line"
    return f"{why}; labelImg and split.py read it as UTF-8 text, one class a line"


def check_dataset(config: DatasetConfig) -> CheckReport:
    """Scan every split named in data.yaml; never raises on dataset content."""
    report = CheckReport(config)
    seen: dict[bytes, Path] = {}
    if any(split not in config.split_images for split in TRAINING_SPLITS):
        report.issues.append(Issue(config.yaml_path, None, Severity.ERROR, "yaml", "data.yaml must name 'train' and 'val' folders"))
    for split in config.split_images:
        report.splits[split] = check_split(split, config.images_dir(split), config.labels_dir(split),
                                           len(config.names), report, seen)
    return report


def apply_fixes(report: CheckReport, backup_dir: Path) -> list[Path]:
    """Rewrite label files with only the safe repairs, backing up each original first.

    Backups keep the path relative to the dataset root, so `cp -r backup/* data/` undoes a fix.
    """
    fixed = []
    root = report.config.root
    for label in report.fixable_labels:
        try:
            rel = label.path.resolve().relative_to(root)
        except ValueError:
            rel = Path(label.path.name)
        atomic_copy(label.path, backup_dir / rel)
        atomic_write_text(label.path, label.fixed_text())
        fixed.append(label.path)
    return fixed
