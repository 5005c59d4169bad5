"""Add reviewed photos and their labels to the dataset of a data.yaml, without disturbing it.

Photos already in the dataset keep their split (the test split never changes under anyone's feet),
and a new photo whose content is already there, under any name or split, is skipped and reported.
New photos are shared out over the splits as split.py does (stratified, rarest class first). Files
are copied, never moved; nothing existing is overwritten; a photo without a label file, or whose
labels would not pass check.py, is skipped and reported, so check.py passes on the result.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from maskdet.config import DatasetConfig
from maskdet.data.check import inspect_image
from maskdet.data.labels import Severity, read_label_file
from maskdet.data.split import Sample, make_sample, stratified_split
from maskdet.errors import UserError, printable
from maskdet.fileio import atomic_copy, list_images
from maskdet.progress import progress


@dataclass
class MergePlan:
    assignment: dict[str, list[Sample]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)  # one line per photo already in the dataset
    skipped: list[str] = field(default_factory=list)  # one line per photo that cannot be added as it is
    copied: int = 0  # photos apply_merge has copied so far (what a stopped merge says it did)

    @property
    def added(self) -> int:
        return sum(len(v) for v in self.assignment.values())


def added_lines(plan: MergePlan, config: DatasetConfig, dry_run: bool) -> list[str]:
    """Per split: the photos and boxes the merge adds (or would), and how many photos the split holds with them.
    Not split.py's summary: a split that gets no new photo is not an empty split."""
    lines = []
    for split in config.split_images:
        samples = plan.assignment.get(split, [])
        boxes = Counter()
        for sample in samples:
            boxes.update(dict(sample.boxes_per_class))
        per_class = ", ".join(f"{printable(config.names[c]) if c < len(config.names) else c} {boxes[c]}" for c in sorted(boxes))
        folder = config.images_dir(split)
        held = len(list_images(folder)) if folder.is_dir() else 0
        total = held + len(samples) if dry_run else held
        lines.append(f"{split:<5} +{len(samples)} photos, +{sum(boxes.values())} boxes{f' ({per_class})' if per_class else ''}; "
                     f"{'would then hold' if dry_run else 'now holds'} {total} photos")
    return lines


def dataset_photos(config: DatasetConfig) -> tuple[dict[bytes, Path], dict[str, Path]]:
    """Every image of every split of the dataset, by content digest and by stem."""
    by_digest: dict[bytes, Path] = {}
    by_stem: dict[str, Path] = {}
    for split in config.split_images:
        folder = config.images_dir(split)
        for image in list_images(folder) if folder.is_dir() else []:
            _, digest, _ = inspect_image(image)
            if digest is not None:
                by_digest.setdefault(digest, image)
            by_stem.setdefault(image.stem, image)
    return by_digest, by_stem


def labels_without_photos(config: DatasetConfig, photo_stems: set[str]) -> dict[str, tuple[str, Path]]:
    """Label files in the dataset whose photo is not there, by stem, with their split: what an interrupted merge
    leaves (it copies the label first), or someone's stray file."""
    found: dict[str, tuple[str, Path]] = {}
    for split in config.split_images:
        folder = config.labels_dir(split)
        for label in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
            if label.stem not in photo_stems and label.name != "classes.txt":
                found.setdefault(label.stem, (split, label))
    return found


def same_bytes(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def plan_merge(images_dir: Path, labels_dir: Path, config: DatasetConfig, ratios: dict[str, float], seed: int,
               echo=print) -> MergePlan:
    """Decide what to add where; reads only. Per-photo problems are echoed and counted, never raised."""
    images = list_images(images_dir)
    if not images:
        raise UserError("no images (.jpg, .png, ...) in this folder", images_dir)
    known_digests, known_stems = dataset_photos(config)
    unfinished = labels_without_photos(config, set(known_stems))
    plan = MergePlan()
    candidates: list[Sample] = []
    resumed: dict[str, list[Sample]] = {}  # photos whose label an interrupted merge already copied: into that split
    new_digests: dict[bytes, Path] = {}
    new_stems: set[str] = set()

    def skip(lines: list[str], message: str) -> None:
        lines.append(message)
        echo(f"skipped: {message}")

    for image in progress(images, desc="merge", unit="photo"):
        _, digest, problems = inspect_image(image)
        errors = [p for p in problems if p.severity is Severity.ERROR]
        if errors or digest is None:
            skip(plan.skipped, str(errors[0]) if errors else f"{image}: unreadable")
            continue
        if digest in known_digests:
            skip(plan.duplicates, f"{image}: same content as {known_digests[digest]}, already in the dataset")
            continue
        if digest in new_digests:
            skip(plan.duplicates, f"{image}: same content as {new_digests[digest]}, added once")
            continue
        label = labels_dir / f"{image.stem}.txt"
        if not label.is_file():
            skip(plan.skipped, f"{image}: no label file {label} (label it first; an empty file means no face)")
            continue
        blocking = [i for i in read_label_file(label, len(config.names)).issues if i.severity is not Severity.WARNING]
        if blocking:
            skip(plan.skipped, f"{blocking[0]} (fix it, then merge again)")
            continue
        if image.stem in known_stems or image.stem in new_stems:
            where = known_stems.get(image.stem, "another new photo")
            skip(plan.skipped, f"{image}: a different photo with this name is already there ({where}); rename it "
                               f"and its label file to add it")
            continue
        if image.stem in unfinished:
            split, there = unfinished[image.stem]
            if not same_bytes(label, there):
                skip(plan.skipped, f"{image}: a different label file with this name is already in the dataset without "
                                   f"its photo ({there}); move it away, or rename this photo and its label, to add it")
                continue
            new_digests[digest] = image
            new_stems.add(image.stem)
            resumed.setdefault(split, []).append(make_sample(image, label))  # its label is there: finish that copy
            continue
        new_digests[digest] = image
        new_stems.add(image.stem)
        candidates.append(make_sample(image, label))
    if candidates:
        plan.assignment = stratified_split(candidates, ratios, seed)
    for split, samples in resumed.items():
        plan.assignment[split] = sorted([*plan.assignment.get(split, []), *samples], key=lambda s: s.stem)
    return plan


def interleaved(assignment: dict[str, list[Sample]]) -> list[tuple[str, Sample]]:
    """Every split's photos spread evenly over the copying (train, train, val, train, test...), each split at its own
    pace. A merge stopped partway has then copied its plan's ratios, and running it again, which splits the photos
    still to copy by those ratios, ends where the whole plan would: copied one split after the other, a stop after
    train left val and test a quarter short."""
    paced = [((i + 0.5) / len(samples), order, split, sample)
             for order, (split, samples) in enumerate(assignment.items()) for i, sample in enumerate(samples)]
    return [(split, sample) for _, _, split, sample in sorted(paced, key=lambda item: item[:2])]


def apply_merge(plan: MergePlan, config: DatasetConfig) -> None:
    """Copy each photo's label, then the photo itself, into its split: an interrupted merge leaves at
    most a label without its image (an orphan check.py reports), never an unlabelled photo; the same merge run
    again finds that label (plan_merge) and copies the photo beside it."""
    for split, sample in progress(interleaved(plan.assignment), desc="copy", unit="photo"):
        image_target = config.images_dir(split) / sample.image.name
        label_target = config.labels_dir(split) / f"{sample.stem}.txt"
        label_done = label_target.exists() and same_bytes(sample.label, label_target)
        for target in (image_target, label_target):
            if target.exists() and not (target == label_target and label_done):
                raise UserError("already exists; nothing is overwritten (was it added meanwhile?)", target)
        if not label_done:
            atomic_copy(sample.label, label_target)
        atomic_copy(sample.image, image_target)
        plan.copied += 1
