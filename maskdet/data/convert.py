"""Import labels people already have into this project's YOLO layout.

Two sources: Pascal VOC XML (labelImg's default mode, Kaggle) and another YOLO dataset with its
own data.yaml and class names (a Roboflow export). Both remap class names onto data.yaml, write
labels atomically and never overwrite without `force`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from maskdet.config import SPLITS, DatasetConfig, class_list_mismatch, labels_dir_for, read_class_list, read_dataset_yaml
from maskdet.data.labels import Severity, format_label_text, read_label_file
from maskdet.data.voc import ConversionStats, parse_voc, voc_to_boxes
from maskdet.errors import UserError
from maskdet.fileio import atomic_copy, atomic_write_text, is_image, list_images
from maskdet.progress import progress


@dataclass
class ImportReport:
    files_written: int = 0
    images_copied: int = 0
    stats: ConversionStats = field(default_factory=ConversionStats)
    skipped: list[str] = field(default_factory=list)  # one line per file that could not be used
    bad_lines: int = 0  # label lines that could not be read (each named as it was met)

    def summary_lines(self, out_dir: Path) -> list[str]:
        s = self.stats
        lines = [f"wrote {self.files_written} label files to {out_dir}"
                 + (f" and copied {self.images_copied} images" if self.images_copied else "")]
        lines.append(f"boxes: {s.boxes_out} written of {s.boxes_in} read; {s.clipped} clipped to the image edge; "
                     f"{s.dropped} dropped (unreadable, empty, inverted or outside)")
        if s.per_class:
            lines.append("per class: " + ", ".join(f"{n} {c}" for n, c in s.per_class.most_common()))
        if self.bad_lines:
            lines.append(f"NOT imported: {self.bad_lines} label lines that could not be read (listed above): their "
                         "faces are missing from the labels; fix them and import again with --force")
        if s.unknown:
            lines.append(f"NOT imported, class not in data.yaml: {s.unknown_summary()}  (map them with --map OLD=NEW)")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} files (listed above)")
        return lines

    @property
    def exit_status(self) -> int:
        """0 when everything was imported; 1 when something was left out (named above the summary)."""
        return 1 if self.stats.unknown or self.skipped or self.bad_lines else 0


def image_size(path: Path) -> tuple[int, int]:
    """Width and height from the image header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as exc:  # PIL raises many types for corrupt files
        raise UserError(f"cannot read image: {exc}", path) from None


def refuse_overwrite(targets: Iterable[Path], force: bool) -> None:
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise UserError(f"{len(existing)} output files already exist (first: {existing[0]}); "
                        "nothing was written. Pass --force to overwrite them")


def write_classes_txt(labels_dir: Path, names: tuple[str, ...]) -> None:
    """labelImg reads classes.txt beside YOLO labels; keeping it equal to data.yaml keeps ids stable."""
    atomic_write_text(labels_dir / "classes.txt", "".join(f"{n}\n" for n in names))


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
    rename: dict[str, str] | None = None, force: bool = False, echo=print, trim_top: float = 0.0,
) -> ImportReport:
    """Convert every *.xml in xml_dir, matching images by file stem (the XML's <filename> is often stale)."""
    xml_files = sorted(p for p in Path(xml_dir).glob("*.xml"))
    if not xml_files:
        raise UserError("no .xml files found", xml_dir)
    images = {p.stem: p for p in list_images(images_dir)}
    refuse_overwrite((out_dir / f"{x.stem}.txt" for x in xml_files), force)
    refuse_other_classes_txt(out_dir, config.names, force, echo)
    report = ImportReport()
    for xml_path in progress(xml_files, desc="voc2yolo", unit="file"):
        image = images.get(xml_path.stem)
        try:
            if image is None:
                raise UserError(f"no image named {xml_path.stem}.* in {images_dir}", xml_path)
            ann = parse_voc(xml_path)
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
        atomic_write_text(out_dir / f"{xml_path.stem}.txt", format_label_text(boxes))
        report.files_written += 1
    write_classes_txt(out_dir, config.names)
    return report


def class_id_remap(src_names: tuple[str, ...], dst: DatasetConfig, rename: dict[str, str]) -> dict[int, int | None]:
    """Source class id -> our id (None: not imported), matching by name after --map renames."""
    return {i: dst.class_ids.get(rename.get(n, n)) for i, n in enumerate(src_names)}


def source_split_folders(src_yaml: Path) -> tuple[tuple[str, ...], list[tuple[str, Path]]]:
    """Names and the image folders of each split a foreign data.yaml declares (Roboflow style)."""
    data, names, base = read_dataset_yaml(src_yaml)
    folders = []
    for split in SPLITS:
        value = data.get(split)
        if not isinstance(value, str):
            continue
        candidates = [base / value, src_yaml.parent / value, src_yaml.parent / value.lstrip("./").removeprefix("../")]
        folder = next((c for c in candidates if c.is_dir()), None)
        if folder is None:
            raise UserError(f"the '{split}' folder {value!r} does not exist", src_yaml)
        folders.append((split, folder.resolve()))
    if not folders:
        raise UserError("names no train/val/test image folders", src_yaml)
    return names, folders


def import_yolo_dataset(
    src_yaml: Path, out_dir: Path, config: DatasetConfig, rename: dict[str, str] | None = None,
    prefix: str = "", force: bool = False, echo=print,
) -> ImportReport:
    """Copy a foreign YOLO dataset into out_dir/{images,labels}, renumbering classes by name.

    Its own splits are merged (split.py splits again); `prefix` keeps stems of several merged
    datasets apart.
    """
    rename = rename or {}
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
    refuse_overwrite((p for _, img in images for p in (out_images / f"{prefix}{img.name}", out_labels / f"{prefix}{img.stem}.txt")), force)
    refuse_other_classes_txt(out_labels, config.names, force, echo)
    report = ImportReport()
    for _split, img in progress(images, desc="import", unit="image"):
        label_path = labels_dir_for(img.parent) / f"{img.stem}.txt"
        boxes = []
        if label_path.exists():
            parsed = read_label_file(label_path, num_classes=len(names))
            errors = [i for i in parsed.issues if i.severity is Severity.ERROR]
            for problem in errors:
                echo(f"skipped line: {problem}")
            report.bad_lines += len(errors)
            if errors and not parsed.boxes:  # faces, none readable: an empty label would call it a background photo
                report.skipped.append(f"{img}: no readable line in {label_path}; not imported")
                echo(f"skipped: {report.skipped[-1]}")
                continue
            for box in parsed.boxes:
                report.stats.boxes_in += 1
                target = remap.get(box.cls)
                if target is None:
                    report.stats.add_unknown(names[box.cls], label_path)
                    continue
                boxes.append(replace(box.clipped(), cls=target))
                report.stats.per_class[config.names[target]] += 1
                report.stats.boxes_out += 1
        atomic_copy(img, out_images / f"{prefix}{img.name}")
        report.images_copied += 1
        atomic_write_text(out_labels / f"{prefix}{img.stem}.txt", format_label_text(boxes))
        report.files_written += 1
    write_classes_txt(out_labels, config.names)
    return report

