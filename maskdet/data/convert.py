"""Import labels people already have into this project's YOLO layout.

Two sources: Pascal VOC XML (labelImg's default mode, Kaggle) and another YOLO dataset with its
own data.yaml and class names (a Roboflow export). Both remap class names onto data.yaml, write
labels atomically and never overwrite without `force`.
"""

from __future__ import annotations

import filecmp
import os
import warnings
from collections import Counter
from collections.abc import Container, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from maskdet.config import SPLITS, DatasetConfig, class_list_mismatch, labels_dir_for, read_class_list, read_dataset_yaml
from maskdet.data.labels import Box, LabelFile, Severity, format_label_text, read_label_file
from maskdet.data.voc import ConversionStats, VocAnnotation, clip_to_image, parse_voc, voc_to_boxes
from maskdet.errors import UserError, printable
from maskdet.fileio import atomic_copy, atomic_write_text, is_image, list_images
from maskdet.imageio import pillow_open
from maskdet.progress import progress


def print_outside_text(text: str) -> None:
    """Print a line built from another dataset's files (class names, label lines, file names): its control characters
    escaped, so a class named '\\x1b]0;...' cannot retitle or rewrite the user's terminal."""
    print("\n".join(printable(line) for line in text.split("\n")))


@dataclass
class ImportReport:
    files_written: int = 0
    images_copied: int = 0
    stats: ConversionStats = field(default_factory=ConversionStats)
    skipped: list[str] = field(default_factory=list)  # one line per file that could not be used
    bad_lines: int = 0  # label lines that could not be read (each named as it was met)
    unreadable_boxes: int = 0  # VOC <object>s that could not be read (nan, no <bndbox>): each named as it was met
    # Photos with boxes that got no label file (an empty one would call them photos without faces): one line each,
    # and how many for each reason, for the summary.
    left_out: list[str] = field(default_factory=list)
    left_out_reasons: Counter = field(default_factory=Counter)
    already_there: int = 0  # photos an earlier run of the same import already wrote exactly so: kept as they are

    def leave_out(self, message: str, reason: str, target: Path, echo=print) -> None:
        """Leave a photo with boxes out of the import, named now and counted for the summary. A label file already
        at `target` (a run before, with --force) is not ours to delete: said so, as it may call the photo empty."""
        if target.exists():
            message += f"; {target} from before is left as it was"
        self.left_out.append(message)
        self.left_out_reasons[reason] += 1
        echo(f"left out: {message}")

    def summary_lines(self, out_dir: Path) -> list[str]:
        s = self.stats
        lines = [f"wrote {self.files_written} label files to {out_dir}"
                 + (f" and copied {self.images_copied} images" if self.images_copied else "")
                 + (f"; {self.already_there} photos were already there exactly so (an earlier run), kept"
                    if self.already_there else "")]
        reasons = "unreadable, empty, inverted, outside or duplicate" if s.duplicates else "unreadable, empty, inverted or outside"
        lines.append(f"boxes: {s.boxes_out} written of {s.boxes_in} read; {s.clipped} clipped to the image edge; "
                     f"{s.dropped} dropped ({reasons})")
        if s.per_class:
            lines.append("per class: " + ", ".join(f"{n} {c}" for n, c in s.per_class.most_common()))
        if self.bad_lines:
            lines.append(f"NOT imported: {self.bad_lines} label lines that could not be read (listed above): their "
                         "faces are missing from the labels; fix them and import again with --force")
        if self.unreadable_boxes:
            lines.append(f"NOT imported: {self.unreadable_boxes} boxes that could not be read (listed above): their faces "
                         "are missing from the labels; fix the XML and convert again with --force")
        if self.left_out:
            why = "; ".join(f"{n} {reason}" for reason, n in self.left_out_reasons.most_common())
            lines.append(f"NOT imported: {len(self.left_out)} photos that have boxes, listed above ({why}): they got no "
                         "label file rather than an empty one (a photo without faces) or a corrupted one")
        if s.unknown:
            lines.append(f"NOT imported, class not in data.yaml: {s.unknown_summary()}  (map them with --map OLD=NEW)")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} files (listed above)")
        return lines

    @property
    def exit_status(self) -> int:
        """0 when everything was imported; 1 when something was left out (named above the summary)."""
        return 1 if self.stats.unknown or self.skipped or self.bad_lines or self.unreadable_boxes or self.left_out else 0


def none_imported(stats: ConversionStats, unreadable: int = 0) -> tuple[str, str] | None:
    """Why a photo with boxes got none of them imported ("2 of classes not in data.yaml, 1 dropped" and the
    summary's reason), or None when it has a box to write or had none to begin with (a real background)."""
    if stats.boxes_out or not (stats.boxes_in or unreadable):
        return None
    unknown = sum(stats.unknown.values())
    counts = {"unreadable": unreadable, "of classes not in data.yaml": unknown, "dropped": stats.dropped}
    details = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    reason = "none importable: " + " or ".join(kind.removeprefix("of ") for kind, n in counts.items() if n)
    return f"none of its {stats.boxes_in + unreadable} boxes could be imported ({details})", reason


def check_class_map(rename: dict[str, str], config: DatasetConfig) -> None:
    """Refuse a --map onto a class data.yaml does not have, before anything is written: a typo there would
    otherwise leave every box of that class out (and the summary would name the source class, not the typo)."""
    bad = [(old, new) for old, new in rename.items() if new not in config.class_ids]
    if bad:
        pairs = ", ".join(f"{old}={new}" for old, new in bad)
        targets = ", ".join(f"'{new}'" for _, new in bad)
        raise UserError(f"--map {pairs}: {targets} {'is not a class' if len(bad) == 1 else 'are not classes'} of "
                        f"{config.yaml_path}; its classes are {', '.join(config.names)}")


# Characters no file name may hold on Windows or FAT (an export may be copied there), besides separators.
NOT_IN_FILE_NAMES = frozenset('<>:"|?*')


def file_name_prefix_problem(prefix: str) -> str | None:
    """What makes --prefix unusable, or None: it is glued in front of file names inside --out, so a path
    separator or '..' would write outside it or into new subfolders."""
    if ".." in prefix:
        return "contains '..'"
    separators = {"/", "\\", os.sep, os.altsep or "/"}
    bad = sorted({ch for ch in prefix if ch in separators or ch in NOT_IN_FILE_NAMES or not ch.isprintable()})
    if bad:
        return "contains " + ", ".join(ascii(ch) for ch in bad) + ", not allowed in a file name"
    return None


def check_file_name_prefix(prefix: str) -> None:
    problem = file_name_prefix_problem(prefix)
    if problem is not None:
        raise UserError(f"--prefix {ascii(prefix)} {problem}: it is put in front of each file name inside --out, "
                        "so it must be part of a file name, not a path")


EXIF_ORIENTATION = 0x0112
ROTATED_A_QUARTER = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height


def upright_size(im: Image.Image) -> tuple[int, int]:
    """Width and height of the image as it is shown: a phone photo stored sideways with EXIF orientation 6
    is shown, labelled (labelImg), trained on (Ultralytics) and detected on upright, so its label boxes are
    fractions of the upright size."""
    width, height = im.size
    try:
        orientation = im.getexif().get(EXIF_ORIENTATION)
    except Exception:  # a damaged EXIF block: shown as stored, as Ultralytics does
        orientation = None
    return (height, width) if orientation in ROTATED_A_QUARTER else (width, height)


def image_size(path: Path) -> tuple[int, int]:
    """Width and height as the image is shown (EXIF orientation applied), from its header, without decoding
    the pixels."""
    try:
        with warnings.catch_warnings():  # a photo of 100+ megapixels: only its header is read here, no memory spent
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with pillow_open(path) as im:
                return upright_size(im)
    except Exception as exc:  # PIL raises many types for corrupt files
        raise UserError(f"cannot read image: {exc}", path) from None


def refuse_overwrite(targets: Iterable[Path], force: bool) -> None:
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise UserError(f"{len(existing)} output files already exist (first: {existing[0]}); "
                        "nothing was written. Pass --force to overwrite them")


def write_classes_txt(labels_dir: Path, names: tuple[str, ...]) -> None:
    """labelImg reads classes.txt beside YOLO labels; keeping it equal to data.yaml keeps ids stable. One already
    so is left untouched (a rerun that completes an interrupted import changes nothing else either)."""
    target, text = labels_dir / "classes.txt", "".join(f"{n}\n" for n in names)
    if not (target.is_file() and target.read_bytes() == text.encode("utf-8")):
        atomic_write_text(target, text)


def refuse_other_classes_txt(labels_dir: Path, names: tuple[str, ...], force: bool, echo=print) -> None:
    """A classes.txt already in the output folder that lists other classes is someone's: the labels beside it
    use its ids. Replaced only with --force (said so); checked before anything is written."""
    path = labels_dir / "classes.txt"
    if not path.is_file():
        return
    found = read_class_list(path)
    if tuple(found) == tuple(names):
        return
    why = class_list_mismatch(found, names) or f"it lists {len(found)} classes, data.yaml {len(names)}"
    if not force:
        raise UserError(f"already exists and disagrees with data.yaml ({why}): the labels beside it may use its ids. "
                        "Nothing was written; write to another folder, or pass --force to replace it", path)
    echo(f"warning: {path}: disagreed with data.yaml ({why}); replaced because of --force")


def convert_voc_folder(
    xml_dir: Path, images_dir: Path, out_dir: Path, config: DatasetConfig,
    rename: dict[str, str] | None = None, force: bool = False, echo=print_outside_text, trim_top: float = 0.0,
) -> ImportReport:
    """Convert every *.xml in xml_dir, matching images by file stem (the XML's <filename> is often stale).

    A photo whose XML has objects but none importable gets no label file: an empty one means "no faces".
    """
    check_class_map(rename or {}, config)
    xml_files = sorted(p for p in Path(xml_dir).glob("*.xml"))
    if not xml_files:
        raise UserError("no .xml files found", xml_dir)
    images: dict[str, list[Path]] = {}
    for photo in list_images(images_dir):
        images.setdefault(photo.stem, []).append(photo)
    refuse_overwrite((out_dir / f"{x.stem}.txt" for x in xml_files), force)
    refuse_other_classes_txt(out_dir, config.names, force, echo)
    report = ImportReport()
    try:
        for xml_path in progress(xml_files, desc="voc2yolo", unit="file"):
            candidates = images.get(xml_path.stem, [])
            try:
                if not candidates:
                    raise UserError(f"no image named {xml_path.stem}.* in {images_dir}", xml_path)
                ann = parse_voc(xml_path)
                image = photo_of_annotation(ann, candidates, echo)
                size = image_size(image)
            except UserError as exc:
                report.skipped.append(str(exc))
                echo(f"skipped: {exc}")
                continue
            if ann.width and ann.height and (ann.width, ann.height) != size:
                echo(f"note: {xml_path}: <size> says {ann.width}x{ann.height}, the image is {size[0]}x{size[1]}; using the image")
            boxes, stats = voc_to_boxes(ann, size, config.class_ids, rename, trim_top)
            for note in stats.notes:
                echo(note)
            report.stats.add(stats)
            report.unreadable_boxes += len(ann.skipped)
            # The summary counts an unreadable <object> among the dropped boxes; a photo left out says which it was.
            unread = len(ann.skipped)
            why = none_imported(replace(stats, boxes_in=stats.boxes_in - unread, dropped=stats.dropped - unread), unread)
            if why is not None:
                report.leave_out(f"{xml_path}: {why[0]}; no label file written", why[1], out_dir / f"{xml_path.stem}.txt", echo)
                continue
            atomic_write_text(out_dir / f"{xml_path.stem}.txt", format_label_text(boxes))
            report.files_written += 1
    except KeyboardInterrupt:  # what was written stays, complete; say how far it got before the one-line notice
        write_classes_txt(out_dir, config.names)
        echo(f"interrupted after {report.files_written} label files: each is complete; the same command with --force "
             "converts the rest (and writes these again, the same)")
        for line in report.summary_lines(out_dir):
            echo(line)
        raise
    write_classes_txt(out_dir, config.names)
    return report


def photo_of_annotation(ann: VocAnnotation, candidates: list[Path], echo=print) -> Path:
    """The photo an XML describes among those sharing its stem (photo.jpg and photo.png): the one its <filename>
    names, else a UserError naming them all; picking one by chance would put its boxes on the other photo."""
    if len(candidates) == 1:
        return candidates[0]
    named = Path(ann.filename.replace("\\", "/")).name if ann.filename else None
    shown = " and ".join(printable(p.name) for p in candidates)
    chosen = next((p for p in candidates if p.name == named), None)
    if chosen is None:
        raise UserError(f"{len(candidates)} photos share its name, {shown}, and its <filename> "
                        f"({printable(ann.filename or 'none')}) names neither: rename the other photo, or correct "
                        "<filename>", ann.path)
    others = ", ".join(printable(p.name) for p in candidates if p != chosen)
    echo(f"note: {ann.path}: {others} shares the name of {printable(chosen.name)}, which <filename> names; its label "
         f"file would be the same (check.py refuses that): rename {others}")
    return chosen


def class_id_remap(src_names: tuple[str, ...], dst: DatasetConfig, rename: dict[str, str]) -> dict[int, int | None]:
    """Source class id -> our id (None: not imported), matching by name after --map renames."""
    return {i: dst.class_ids.get(rename.get(n, n)) for i, n in enumerate(src_names)}


def yolo_to_boxes(
    label: LabelFile, src_names: tuple[str, ...], remap: dict[int, int | None], dst_names: tuple[str, ...],
    unreadable: Container[int | None] = (),
) -> tuple[list[Box], ConversionStats]:
    """A foreign label file's readable lines as our boxes: renumbered (None in remap: an unknown class, counted),
    clipped or dropped by clip_to_image as VOC boxes are, and a repeat of a box already kept dropped; each counted.
    Lines without a box, or numbered in `unreadable` (the parser's errors), are the caller's to report and count."""
    stats = ConversionStats()
    boxes: list[Box] = []
    kept: dict[str, int] = {}  # the line as written -> the source line it came from
    for line in label.lines:
        if line.box is None or line.number in unreadable:
            continue
        stats.boxes_in += 1
        name = src_names[line.box.cls]
        target = remap.get(line.box.cls)
        if target is None:
            stats.add_unknown(name, label.path)
            continue
        where = f"{label.path}:{line.number}"
        edges = clip_to_image(line.box.edges, (1.0, 1.0), stats, where, name, "the image")
        if edges is None:
            continue
        box = Box.from_edges(target, *edges)
        if box.to_line() in kept:
            stats.dropped += 1
            stats.duplicates += 1
            stats.notes.append(f"{where}: dropped box '{name}': the same box as line {kept[box.to_line()]}")
            continue
        kept[box.to_line()] = line.number
        boxes.append(box)
        stats.per_class[dst_names[target]] += 1
        stats.boxes_out += 1
    return boxes, stats


def source_split_folders(src_yaml: Path) -> tuple[tuple[str, ...], list[tuple[str, Path]]]:
    """Names and the image folders of each split a foreign data.yaml declares (Roboflow style): one folder, or a
    list of them as Ultralytics accepts (`train: [a/images, b/images]`), each (split, folder)."""
    data, names, base = read_dataset_yaml(src_yaml)
    folders = []
    for split in SPLITS:
        value = data.get(split)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]  # Ultralytics takes a list of folders too
        if not values or not all(isinstance(v, str) and v for v in values):
            raise UserError(f"'{split}' must be a folder path or a list of them, got {printable(repr(value))[:200]}",
                            src_yaml)
        for value in values:
            candidates = [base / value, src_yaml.parent / value, src_yaml.parent / value.lstrip("./").removeprefix("../")]
            folder = next((c for c in candidates if c.is_dir()), None)
            if folder is None:
                raise UserError(f"the '{split}' folder {value!r} does not exist", src_yaml)
            folders.append((split, folder.resolve()))
    if not folders:
        raise UserError("names no train/val/test image folders", src_yaml)
    return names, folders


@dataclass(frozen=True)
class PlannedImport:
    """One photo to import: its copy and its label text, decided before anything is written."""

    image: Path
    image_target: Path
    label_target: Path
    label_text: str

    def label_done(self) -> bool:
        """Whether the label file is already there as this import writes it (an earlier run of the same import)."""
        return self.label_target.is_file() and self.label_target.read_bytes() == self.label_text.encode("utf-8")

    def image_done(self) -> bool:
        return self.image_target.is_file() and filecmp.cmp(self.image, self.image_target, shallow=False)

    def conflicts(self) -> list[Path]:
        """Targets that hold something else: someone's files, replaced only with --force."""
        return [target for target, done in ((self.label_target, self.label_done), (self.image_target, self.image_done))
                if target.exists() and not done()]


def import_yolo_dataset(
    src_yaml: Path, out_dir: Path, config: DatasetConfig, rename: dict[str, str] | None = None,
    prefix: str = "", force: bool = False, echo=print_outside_text,
) -> ImportReport:
    """Copy a foreign YOLO dataset into out_dir/{images,labels}, renumbering classes by name.

    Its own splits are merged (split.py splits again); `prefix` keeps stems of several merged
    datasets apart. A photo with boxes gets no label file (nor is copied) when none of them can be imported,
    or when one is far outside [0, 1] (pixel coordinates?): an empty or clipped-out-of-shape label would be wrong.
    Each photo's label is written before the photo is copied, so an interrupted import leaves at most a label
    without its photo (never a photo that later steps would take for one without faces), and a rerun of the same
    import completes it: files already there exactly as it writes them are kept, anything else needs `force`.
    """
    rename = rename or {}
    check_class_map(rename, config)
    check_file_name_prefix(prefix)
    names, folders = source_split_folders(Path(src_yaml))
    remap = class_id_remap(names, config, rename)
    images = [(split, img) for split, folder in folders for img in sorted(folder.iterdir()) if img.is_file() and is_image(img)]
    if not images:
        raise UserError("no images found in its split folders", src_yaml)
    stems = Counter(f"{prefix}{img.stem}" for _, img in images)
    clashes = [s for s, n in stems.items() if n > 1]
    if clashes:
        raise UserError(f"{len(clashes)} image names repeat across its splits (e.g. {clashes[0]}); "
                        "import each split with its own --prefix", src_yaml)
    out_images, out_labels = out_dir / "images", out_dir / "labels"
    refuse_other_classes_txt(out_labels, config.names, force, echo)
    report = ImportReport()
    planned: list[PlannedImport] = []
    from maskdet.data.check import inspect_image  # here: check.py imports this module

    for _split, img in progress(images, desc="import", unit="image"):
        label_path = labels_dir_for(img.parent) / f"{img.stem}.txt"
        target_label = out_labels / f"{prefix}{img.stem}.txt"
        # Bounded in bytes and pixels, and an image at all: a text file named .jpg, or a link to one, is not copied.
        problems = [issue for issue in inspect_image(img)[2] if issue.severity is Severity.ERROR]
        if problems:
            report.skipped.append(f"{problems[0]}; not imported")
            echo(f"skipped: {report.skipped[-1]}")
            continue
        boxes = []
        if label_path.exists():
            parsed = read_label_file(label_path, num_classes=len(names))
            # Numbers beyond labels.OVERHANG_LIMIT (pixels, most likely), which the parser rejects: reported below,
            # with the photo they keep out (importing its other boxes would make a photo with a face unlabelled).
            far = [line for line in parsed.lines if line.action == "reject" and remap.get(line.box.cls) is not None]
            errors = [i for i in parsed.issues if i.severity is Severity.ERROR and i.line not in {f.number for f in far}]
            for problem in errors:
                echo(f"skipped line: {problem}")
            report.bad_lines += len(errors)
            if errors and all(line.box is None for line in parsed.lines):  # faces, none readable
                report.skipped.append(f"{img}: no readable line in {label_path}; not imported")
                echo(f"skipped: {report.skipped[-1]}")
                continue
            for line in far:
                echo(f"{label_path}:{line.number}: coordinates far outside [0, 1] in '{printable(line.text)}': pixels, not "
                     "fractions of the image?")
            if far:
                numbers = ", ".join(str(line.number) for line in far)
                report.leave_out(f"{label_path}: coordinates far outside [0, 1] on line{'s' * (len(far) > 1)} {numbers}; "
                                 f"{img} not imported: clipping would make other boxes of them",
                                 "coordinates far outside [0, 1]", target_label, echo)
                continue
            boxes, stats = yolo_to_boxes(parsed, names, remap, config.names, {i.line for i in errors})
            for note in stats.notes:
                echo(note)
            report.stats.add(stats)
            why = none_imported(stats, len(errors))
            if why is not None:
                report.leave_out(f"{label_path}: {why[0]}; {img} not imported", why[1], target_label, echo)
                continue
        planned.append(PlannedImport(img, out_images / f"{prefix}{img.name}", target_label, format_label_text(boxes)))
    conflicts = [target for item in planned for target in item.conflicts()]
    refuse_overwrite(conflicts, force)
    for item in progress(planned, desc="copy", unit="image"):
        if item.label_done() and item.image_done():
            report.already_there += 1
            continue
        if not item.label_done():
            atomic_write_text(item.label_target, item.label_text)
        report.files_written += 1
        if not item.image_done():
            atomic_copy(item.image, item.image_target)
        report.images_copied += 1
    write_classes_txt(out_labels, config.names)
    return report
