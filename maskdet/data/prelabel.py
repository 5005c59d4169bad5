"""Pre-label new photos with the model: a YOLO label file per photo, so people only correct boxes.

Labels go where labelImg (labeling/label.py) reads them, with a classes.txt in data.yaml's order.
A label file that already exists is someone's work and is kept unless `force`. Each file is
written atomically as soon as its photo is done, so an interrupted run keeps every finished one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from maskdet.data.review import ReviewItem, box_doubt, write_review_order
from maskdet.errors import UserError
from maskdet.fileio import atomic_write_text, list_images
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.detectors import Detector
from maskdet.inference.sources import SourceError, read_image
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
    photos: int = 0
    written: int = 0
    kept: list[Path] = field(default_factory=list)  # label files that existed and were left untouched
    skipped: list[str] = field(default_factory=list)  # unreadable photos, one line each
    boxes: Counter = field(default_factory=Counter)  # class name -> boxes written
    no_face: list[str] = field(default_factory=list)  # photos written with an empty label file
    review: list[ReviewItem] = field(default_factory=list)

    def summary_lines(self, labels_dir: Path) -> list[str]:
        per_class = ", ".join(f"{n} {name}" for name, n in self.boxes.most_common()) or "none"
        lines = [f"{self.photos} photos: {self.written} pre-labelled into {labels_dir}, {len(self.kept)} already "
                 f"labelled and kept, {len(self.skipped)} unreadable and skipped",
                 f"boxes: {sum(self.boxes.values())} ({per_class})",
                 f"no face found in {len(self.no_face)} photos" + (f" (e.g. {self.no_face[0]})" if self.no_face else "")]
        if self.kept:
            lines.append(f"kept existing labels (someone's work; --force replaces them): e.g. {self.kept[0]}")
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
                    review_file: Path | None = None, echo=print) -> PrelabelReport:
    """Write a label file for every photo directly in images_dir that has none (all with force).

    `detector` is the per-frame step (a Pipeline, as prelabel.py builds it) or a bare Detector called on
    the image. It must report boxes down to REVIEW_FLOOR (or conf, if lower): the boxes at or above
    conf are written, and all of them give the photo's place in the review order, written to
    review_file at the end (also after Ctrl-C, for the photos done so far).
    """
    images = list_images(images_dir)
    if not images:
        raise UserError("no images (.jpg, .png, ...) in this folder", images_dir)
    process = detector.process if hasattr(detector, "process") else lambda frame: detector(frame.image)
    report = PrelabelReport()
    seen_stems: dict[str, Path] = {}
    try:
        for image_path in progress(images, desc="prelabel", unit="photo"):
            report.photos += 1
            label_path = labels_dir / f"{image_path.stem}.txt"
            if image_path.stem in seen_stems:
                report.skipped.append(f"{image_path}: same name as {seen_stems[image_path.stem].name}, so the same label file")
                echo(f"skipped: {report.skipped[-1]}")
                continue
            seen_stems[image_path.stem] = image_path
            if label_path.exists() and not force:
                report.kept.append(label_path)
                continue
            try:
                image = read_image(image_path)
            except SourceError as exc:
                report.skipped.append(str(exc))
                echo(f"skipped: {exc}")
                continue
            det = process(Frame(image, str(image_path), image_path.stem, "image"))
            keep = det.confidence >= conf
            h, w = image.shape[:2]
            boxes = [box.clipped() for box, k in zip(det.yolo_boxes(w, h), keep) if k]
            atomic_write_text(label_path, format_label_text(boxes))
            report.written += 1
            report.boxes.update(det.class_name(i) for i in range(len(det)) if keep[i])
            if not boxes:
                report.no_face.append(image_path.name)
            report.review.append(review_item(image_path.name, det, conf))
    finally:
        if review_file is not None:
            write_review_order(review_file, report.review)
    return report


def review_item(photo: str, det: Detections, conf: float) -> ReviewItem:
    """The photo's closest call among all candidate boxes (written or not)."""
    kept = int((det.confidence >= conf).sum())
    if len(det) == 0:
        return ReviewItem(photo, 0.0, kept)
    doubts = [box_doubt(float(c), conf) for c in det.confidence]
    i = max(range(len(det)), key=lambda j: doubts[j])
    return ReviewItem(photo, doubts[i], kept, f"{det.class_name(i)} {float(det.confidence[i]):.2f}")
