"""Pre-label new photos with the model: a YOLO label file per photo, so people only correct boxes.

Labels go where labelImg (labeling/label.py) reads them, with a classes.txt in data.yaml's order.
A label file that already exists is someone's work and is kept unless `force`, except one an earlier
prelabel run wrote and nobody changed since (its digest is in that run's review order): that photo goes
back in the review order, its label file untouched. Each file is written atomically as soon as its photo
is done, and its row of the review order just before it, so an interrupted run (even killed) keeps every
finished one and their order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from maskdet.data.review import ReviewItem, ReviewLog, box_doubt, earlier_rows
from maskdet.errors import UserError
from maskdet.fileio import TEXT_FILE_LIMIT, atomic_write_text, content_digest, list_images, read_bytes_bounded
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.detectors import Detector
from maskdet.inference.sources import SourceError, read_image
from maskdet.interrupts import interrupts_held
from maskdet.progress import progress
from maskdet.yolo_format import format_label_text

# The default --conf: the threshold at which correcting the pre-labels takes the fewest actions
# (maskdet.data.corrections' cost model), chosen with bench/prelabel_saving.py on the Kaggle val
# split with the shipped model and confirmed on the test split (README, "Label less").
PRELABEL_CONF = 0.35
# Boxes down to this confidence are looked at (never written) to find the model's closest calls.
REVIEW_FLOOR = 0.05


@dataclass
class PrelabelReport:
    total: int = 0  # photos in the folder
    photos: int = 0  # of them, done (all of them unless interrupted)
    written: int = 0
    kept: list[Path] = field(default_factory=list)  # label files that existed and were left untouched
    again: list[str] = field(default_factory=list)  # photos an earlier run pre-labelled, unchanged: reviewed again
    skipped: list[str] = field(default_factory=list)  # unreadable photos, one line each
    clashes: list[str] = field(default_factory=list)  # photos whose label file another photo of the folder has
    boxes: Counter = field(default_factory=Counter)  # class name -> boxes written
    no_face: list[str] = field(default_factory=list)  # photos written with an empty label file
    review: list[ReviewItem] = field(default_factory=list)
    interrupted: bool = False

    @property
    def exit_status(self) -> int:
        """As detect.py: 130 interrupted; 1 some photos were skipped (each named above the summary); else 0."""
        return 130 if self.interrupted else 1 if self.skipped or self.clashes else 0

    def summary_lines(self, labels_dir: Path) -> list[str]:
        per_class = ", ".join(f"{n} {name}" for name, n in self.boxes.most_common()) or "none"
        done = f"interrupted after {self.photos} of {self.total} photos" if self.interrupted else f"{self.photos} photos"
        again = (f"{len(self.again)} pre-labelled by an earlier run and unchanged (reviewed again), " if self.again else "")
        clashes = f", {len(self.clashes)} skipped for a name clash (same label file as another photo)" if self.clashes else ""
        lines = [f"{done}: {self.written} pre-labelled into {labels_dir}, {again}{len(self.kept)} already "
                 f"labelled and kept, {len(self.skipped)} unreadable and skipped{clashes}",
                 f"boxes: {sum(self.boxes.values())} ({per_class})",
                 f"no face found in {len(self.no_face)} photos" + (f" (e.g. {self.no_face[0]})" if self.no_face else "")]
        if self.kept:
            lines.append(f"kept existing labels (someone's work; --force replaces them): e.g. {self.kept[0]}")
        if self.clashes:
            lines.append(f"name clash: {self.clashes[0]} (rename one of them and pre-label again)")
        return lines


def check_model_classes(detector: Detector | FrameStep, names: tuple[str, ...], weights: str | Path) -> None:
    """Label ids are data.yaml's: a model with other classes would write wrong ids."""
    if tuple(detector.names) != tuple(names):
        raise UserError(f"the model's classes {list(detector.names)} differ from data.yaml's {list(names)}", weights)


class FrameStep(Protocol):
    """What prelabel_folder runs on each photo: maskdet.pipeline.Pipeline (what prelabel.py passes)."""

    names: tuple[str, ...]

    def process(self, frame: Frame) -> Detections: ...


def prelabel_folder(images_dir: Path, labels_dir: Path, detector: FrameStep | Detector, conf: float, force: bool = False,
                    review_file: Path | None = None, echo=print, earlier: dict[str, ReviewItem] | None = None) -> PrelabelReport:
    """Write a label file for every photo directly in images_dir that has none (all with force).

    `detector` is the per-frame step (a Pipeline, as prelabel.py builds it) or a bare Detector called on
    the image. It must report boxes down to REVIEW_FLOOR (or conf, if lower): the boxes at or above
    conf are written, and all of them give the photo's place in the review order. review_file gets each
    photo's row as it is done, and the sorted order at the end (also after Ctrl-C, which ends the run
    with report.interrupted set).

    `earlier` (earlier_prelabels) holds what earlier runs wrote: a photo whose label file still has the
    digest recorded there goes in the review order again (with its earlier row), its label file untouched.
    """
    images = list_images(images_dir)
    if not images:
        raise UserError("no images (.jpg, .png, ...) in this folder", images_dir)
    process = detector.process if hasattr(detector, "process") else lambda frame: detector(frame.image)
    report = PrelabelReport(total=len(images))
    todo = sort_out(images, labels_dir, force, earlier or {}, report, echo)
    log = ReviewLog(review_file, images_dir, labels_dir) if review_file is not None else None
    try:
        if log is not None:
            log.add(report.review)  # the photos reviewed again: recorded before anything else, for the next run
        for image_path in progress(todo, desc="prelabel", unit="photo"):
            prelabel_photo(image_path, labels_dir / f"{image_path.stem}.txt", process, conf, report, log, echo)
            report.photos += 1
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if log is not None:
            log.finish(report.review)
    return report


def sort_out(images: list[Path], labels_dir: Path, force: bool, earlier: dict[str, ReviewItem], report: PrelabelReport,
             echo) -> list[Path]:
    """The photos to run the model on; the others (a name clash, a label file kept, or reviewed again) are done."""
    todo, seen_stems = [], {}
    for image_path in images:
        label_path = labels_dir / f"{image_path.stem}.txt"
        if image_path.stem in seen_stems:
            report.clashes.append(f"{image_path}: same name as {seen_stems[image_path.stem].name}, so the same label "
                                  f"file {label_path.name}")
            echo(f"skipped: {report.clashes[-1]}")
        elif label_path.exists() and not force:
            row = earlier.get(image_path.name)
            if row is not None and label_digest(label_path) == row.label_digest:  # the model's, as it wrote it
                report.again.append(image_path.name)
                report.review.append(row)
            else:
                report.kept.append(label_path)
        else:
            todo.append(image_path)
        seen_stems.setdefault(image_path.stem, image_path)
    report.photos = len(images) - len(todo)
    return todo


def prelabel_photo(image_path: Path, label_path: Path, process, conf: float, report: PrelabelReport,
                   log: ReviewLog | None, echo) -> None:
    try:
        image = read_image(image_path)
    except SourceError as exc:
        report.skipped.append(str(exc))
        echo(f"skipped: {exc}")
        return
    det = process(Frame(image, str(image_path), image_path.stem, "image"))
    keep = det.confidence >= conf
    h, w = image.shape[:2]
    text = format_label_text([box.clipped() for box, k in zip(det.yolo_boxes(w, h), keep) if k])
    item = review_item(image_path.name, det, conf, content_digest(text.encode("utf-8")).hex())
    with interrupts_held():  # the row, then the label file: a row whose file is missing just gets pre-labelled again
        if log is not None:
            log.add([item])
        atomic_write_text(label_path, text)
        report.written += 1
        report.boxes.update(det.class_name(i) for i in range(len(det)) if keep[i])
        if not text:
            report.no_face.append(image_path.name)
        report.review.append(item)


def label_digest(label_path: Path) -> str:
    """Hex digest of a label file's bytes ("" when it cannot be read: then it is nobody's known output)."""
    try:
        return content_digest(read_bytes_bounded(label_path, TEXT_FILE_LIMIT)).hex()
    except OSError:
        return ""


def earlier_prelabels(project: Path, images_dir: Path, labels_dir: Path, echo=print) -> dict[str, ReviewItem]:
    """What the earlier runs under `project` (finished, interrupted or killed) pre-labelled in these folders: photo ->
    its row, with the digest of the label file written; the latest run's row where several did."""
    found: dict[str, ReviewItem] = {}
    files = [p for p in Path(project).glob("*/review.txt") if p.is_file()] if Path(project).is_dir() else []
    for path in sorted(files, key=lambda p: p.stat().st_mtime_ns):
        try:
            found.update(earlier_rows(path, images_dir, labels_dir))
        except UserError as exc:  # its label files then count as someone's work: kept, as before
            echo(f"note: an earlier review order was not read ({exc}); the label files it lists count as someone's work")
    return found


def review_item(photo: str, det: Detections, conf: float, label_digest: str = "") -> ReviewItem:
    """The photo's closest call among all candidate boxes (written or not)."""
    kept = int((det.confidence >= conf).sum())
    if len(det) == 0:
        return ReviewItem(photo, 0.0, kept, label_digest=label_digest)
    doubts = [box_doubt(float(c), conf) for c in det.confidence]
    i = max(range(len(det)), key=lambda j: doubts[j])
    return ReviewItem(photo, doubts[i], kept, f"{det.class_name(i)} {float(det.confidence[i]):.2f}", label_digest)
