"""Split a folder of images and labels into data/{train,val,test}/{images,labels}.

Either by ratios (seeded, stratified so that every class, the rarest first, reaches every split)
or exactly as given by lists of stems. The user's originals are only read: copied, or linked on
request.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from maskdet.config import SPLITS, TRAINING_SPLITS, DatasetConfig, load_dataset_config
from maskdet.data.labels import Severity, read_label_file
from maskdet.errors import UserError, printable
from maskdet.fileio import atomic_copy, atomic_symlink, atomic_write_text, is_image, list_images, read_list_lines
from maskdet.progress import progress


@dataclass(frozen=True)
class Sample:
    stem: str
    image: Path
    label: Path | None  # None: a background image (no label file)
    classes: frozenset[int]
    boxes_per_class: tuple[tuple[int, int], ...] = ()


@dataclass
class SplitReport:
    assignment: dict[str, list[Sample]] = field(default_factory=dict)

    def summary_lines(self, names: tuple[str, ...]) -> list[str]:
        lines = []
        for split, samples in self.assignment.items():
            boxes = Counter()
            for s in samples:
                boxes.update(dict(s.boxes_per_class))
            per_class = ", ".join(f"{printable(names[c]) if c < len(names) else c} {boxes[c]}" for c in sorted(boxes))
            if not samples:  # only an optional split gets here: split.py refuses an empty train or val
                per_class = f"(empty: no {split} photos; val.py --split {split} will have nothing to measure)"
            lines.append(f"{split:<5} {len(samples):>6} images {sum(boxes.values()):>7} boxes   {per_class}")
        return lines


def collect_samples(images_dir: Path, labels_dir: Path) -> list[Sample]:
    """Pair images with labels by stem; an image without a label file is a background sample."""
    images = list_images(images_dir)
    if not images:
        raise UserError("no images found", images_dir)
    stems = Counter(p.stem for p in images)
    repeated = [s for s, n in stems.items() if n > 1]
    if repeated:
        raise UserError(f"{len(repeated)} images share a name with another extension (e.g. {repeated[0]}.*): "
                        "their labels would collide", images_dir)
    return [make_sample(image, labels_dir / f"{image.stem}.txt") for image in images]


def check_class_ids(samples: list[Sample], num_classes: int, yaml_path: Path) -> None:
    """Refuse labels with class ids data.yaml does not have: split.py would copy them into the dataset, and
    training would then drop each of their images (or learn from ids meaning nothing)."""
    bad = []
    for sample in samples:
        if sample.label is None:
            continue
        bad += [issue for issue in read_label_file(sample.label, num_classes).issues if issue.code == "class"]
    if bad:
        first = bad[0]
        raise UserError(f"{len(bad)} label lines use class ids data.yaml ({yaml_path}) does not have, first "
                        f"{first.path}:{first.line}: {first.message}; nothing was written. Renumber them "
                        "(labeling/import_yolo.py --map) or give the matching --data")


def usable_samples(samples: list[Sample], num_classes: int) -> tuple[list[Sample], list[str]]:
    """The samples whose label files can be copied as they are, and why each other one is left out.

    A label file that cannot be read (a folder, a named pipe, not UTF-8) stopped the copying halfway, and a line
    that is not a box ('nan', three numbers, pixel coordinates) was copied into the dataset without a word, for
    check.py or training to stumble on. Repairable issues (a box over the edge, a duplicate) are copied: check.py
    --fix repairs them in place."""
    usable, left_out = [], []
    for sample in samples:
        errors = [] if sample.label is None else [
            issue for issue in read_label_file(sample.label, num_classes).issues if issue.severity is Severity.ERROR]
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            left_out.append(f"{errors[0]}{more}")
        else:
            usable.append(sample)
    return usable, left_out


def make_sample(image: Path, label: Path) -> Sample:
    """An image with the classes of its label file (a background sample when there is none)."""
    if not label.exists():
        return Sample(image.stem, image, None, frozenset())
    counts = Counter(b.cls for b in read_label_file(label).boxes)
    return Sample(image.stem, image, label, frozenset(counts), tuple(sorted(counts.items())))


def _largest_remainder(n: int, ratios: list[float]) -> list[int]:
    """Share n items by ratios so the parts sum to n exactly."""
    raw = [n * r for r in ratios]
    counts = [int(x) for x in raw]
    order = sorted(range(len(ratios)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def stratified_split(samples: list[Sample], ratios: dict[str, float], seed: int) -> dict[str, list[Sample]]:
    """Assign samples to splits in class groups, the rarest class first.

    Each image goes with the group of the rarest class it contains, so the images holding a rare
    class are shared out by ratio on their own instead of being left to chance among common ones.
    A split with a non-zero ratio gets at least one image of a group large enough to go round.
    """
    splits = [s for s in ratios if ratios[s] > 0]
    weights = [ratios[s] for s in splits]
    image_count = Counter(c for s in samples for c in s.classes)
    groups: dict[int | None, list[Sample]] = {}
    for sample in samples:
        rarest = min(sample.classes, key=lambda c: (image_count[c], c)) if sample.classes else None
        groups.setdefault(rarest, []).append(sample)
    rng = random.Random(seed)
    out: dict[str, list[Sample]] = {s: [] for s in ratios}
    for key in sorted(groups, key=lambda c: (c is None, image_count.get(c, 0), -1 if c is None else c)):
        group = sorted(groups[key], key=lambda s: s.stem)
        rng.shuffle(group)
        counts = _largest_remainder(len(group), weights)
        if len(group) >= len(splits):
            for i, c in enumerate(counts):  # take one from the largest share for any split left empty
                if c == 0:
                    donor = max(range(len(counts)), key=lambda j: counts[j])
                    counts[donor] -= 1
                    counts[i] = 1
        start = 0
        for split, c in zip(splits, counts):
            out[split].extend(group[start:start + c])
            start += c
    for split in out:
        out[split].sort(key=lambda s: s.stem)
    return out


def fill_empty_training_splits(assignment: dict[str, list[Sample]], ratios: dict[str, float]) -> None:
    """Move one image into train or val where a stratified split's rounding left it none (3 photos at
    0.8/0.1/0.1 in 2 class groups): training cannot start without both, and a user who gave val a share
    expects photos there. The image comes from the largest other split that can spare one, and is the one
    whose rarest class is the commonest, so the rare classes keep their places. (merge.py spreads new photos
    over splits that already hold some, so it does not call this.)"""
    image_count = Counter(c for samples in assignment.values() for s in samples for c in s.classes)
    for split in TRAINING_SPLITS:
        if assignment.get(split) or ratios.get(split, 0) <= 0:
            continue
        donors = [s for s in assignment if s != split and len(assignment[s]) > (1 if s in TRAINING_SPLITS else 0)]
        if not donors:
            continue
        donor = max(donors, key=lambda s: len(assignment[s]))
        moved = max(assignment[donor], key=lambda s: (bool(s.classes), min((image_count[c] for c in s.classes), default=0)))
        assignment[donor].remove(moved)
        assignment[split].append(moved)


def refuse_empty_training_splits(assignment: dict[str, list[Sample]], how: str, where: Path | None = None) -> None:
    """Stop before anything is written when train or val would get no photo: train.py would then send the user
    back to split.py. `how` says what gave the split (the ratios, a list file)."""
    empty = [split for split in TRAINING_SPLITS if not assignment.get(split)]
    if empty:
        raise UserError(f"{how} leaves {' and '.join(empty)} without photos: training needs photos in both train and "
                        "val (val measures each epoch); nothing was written", where)


def read_numbered_stems(path: Path) -> list[tuple[int, str]]:
    """A list file's (line number, image stem) pairs: one stem (or file name, or path) a line (fileio.read_list_lines:
    '#' after a space starts a comment)."""
    stems = []
    for number, line in read_list_lines(path):
        # Strip only a real extension: Roboflow stems such as photo_jpg.rf.3f2a9c contain dots.
        name = Path(line)
        stems.append((number, name.stem if is_image(name) or name.suffix.lower() == ".txt" else name.name))
    return stems


def read_stem_list(path: Path) -> list[str]:
    """A list file's image stems (see read_numbered_stems)."""
    return [stem for _, stem in read_numbered_stems(path)]


def split_from_lists(samples: list[Sample], lists_dir: Path) -> dict[str, list[Sample]]:
    """Use train.txt / val.txt / test.txt exactly; every listed stem must exist and appear once."""
    by_stem = {s.stem: s for s in samples}
    out: dict[str, list[Sample]] = {}
    seen: dict[str, str] = {}
    for split in SPLITS:
        path = lists_dir / f"{split}.txt"
        if not path.exists():
            continue
        out[split] = []
        for number, stem in read_numbered_stems(path):
            if stem in seen:
                raise UserError(f"'{stem}' is listed in both {seen[stem]}.txt and {split}.txt", path, number)
            if stem not in by_stem:
                raise UserError(f"'{stem}' has no image in the images folder", path, number)
            seen[stem] = split
            out[split].append(by_stem[stem])
    if not out:
        raise UserError("no train.txt, val.txt or test.txt found", lists_dir)
    return out


def prepare_output(out_dir: Path, splits: list[str], sources: list[Path], force: bool) -> list[Path]:
    """Refuse to mix with an earlier split unless --force; with it, clear only our own output folders.

    Leaving old files would leak images from one split into another, so --force empties
    out/<split>/{images,labels} first, after making sure the user's originals are not inside. `splits` is every
    split folder split.py owns, not only those the new split fills: an old test split left beside a new
    train/val (lists without test.txt) would hold photos now also in train. Returns the folders emptied.
    """
    targets = [out_dir / s / kind for s in splits for kind in ("images", "labels")]
    existing = [t for t in targets if t.exists() and any(t.iterdir())]
    if existing and not force:
        raise UserError("already holds a split; nothing was written. Pass --force to replace it", existing[0])
    for target in existing:  # check every folder before emptying any: a refusal must leave the old split whole
        resolved = target.resolve()
        for src in sources:
            src = src.resolve()
            if src == resolved or resolved in src.parents or src in resolved.parents:
                raise UserError(f"the output overlaps the input folder {src}; choose another --out", target)
    for target in existing:
        for f in target.iterdir():
            if f.is_file() or f.is_symlink():
                f.unlink()
    return existing


def write_split(assignment: dict[str, list[Sample]], out_dir: Path, link: bool) -> None:
    """Copy (or link) each photo and its label into its split; Ctrl-C says how far it got, and that a split stopped
    partway is redone, not resumed (split.py refuses an existing split without --force)."""
    place = atomic_symlink if link else atomic_copy
    total = sum(len(v) for v in assignment.values())
    items = ((split, s) for split, samples in assignment.items() for s in samples)
    done = 0
    try:
        for split, sample in progress(items, desc="split", unit="image", total=total):
            place(sample.image, out_dir / split / "images" / sample.image.name)
            if sample.label is not None:
                place(sample.label, out_dir / split / "labels" / sample.label.name)
            done += 1
    except KeyboardInterrupt:
        print(f"\nstopped after {done} of {total} images: {out_dir} holds part of the split; run the same command "
              "with --force to write it whole", file=sys.stderr)
        raise


def dataset_yaml_for(out_dir: Path, config: DatasetConfig) -> tuple[Path, bool]:
    """The data.yaml that describes a split written to out_dir, and whether it was written now.

    The project's data.yaml describes its own data/ folder; a split built elsewhere (--out) gets its own
    data.yaml beside it, so `check.py --data` and `train.py --data` can point at what was just built. One
    that is already there is the user's and is kept."""
    if out_dir.resolve() == config.root.resolve():
        return config.yaml_path, False
    target = out_dir / "data.yaml"
    if target.exists():
        return target, False  # the caller says whether it describes this split (mismatch)
    lines = [f"# written by labeling/split.py: the dataset in this folder (classes as in {config.yaml_path})",
             "path: .", *(f"{split}: {split}/images" for split in SPLITS), "names:",
             *(f"  {i}: {name}" for i, name in enumerate(config.names))]
    atomic_write_text(target, "\n".join(lines) + "\n")
    return target, True


def mismatch(dataset_yaml: Path, out_dir: Path, config: DatasetConfig) -> str | None:
    """How a data.yaml the user already had in the split's folder (kept: it is theirs) fails to describe the split
    just written there, or None when it describes it: its classes, or a split folder it names elsewhere."""
    try:
        theirs = load_dataset_config(dataset_yaml)
    except UserError as exc:
        return str(exc)
    if list(theirs.names) != list(config.names):
        return f"its classes are {', '.join(map(printable, theirs.names))}, not {', '.join(map(printable, config.names))}"
    for split in TRAINING_SPLITS:
        wanted = (out_dir / split / "images").resolve()
        if split not in theirs.split_images or theirs.split_images[split].resolve() != wanted:
            return f"its {split}: is not {wanted}"
    return None
