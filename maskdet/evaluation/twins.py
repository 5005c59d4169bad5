"""Test photos that have a twin in train or val, and the test split without them.

The Kaggle set holds some photos twice, a few across the fixed splits (a test photo that is a crop
of a train photo, or a burst shot of the same scene). A model that learned the train photo gets its
test twin right for free, so the test figures are also reported without those photos (issue 16).
The pairs come from ../shared/datasets/kaggle-facemask/near_duplicates.csv, whose columns are
kaggle_a, split_a, kaggle_b, split_b, evidence, strength (one pair a line, file names with suffix).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from maskdet.config import PROJECT_ROOT, load_dataset_config
from maskdet.errors import UserError
from maskdet.fileio import atomic_write_text, list_images

TWINS_CSV = PROJECT_ROOT.parent / "shared" / "datasets" / "kaggle-facemask" / "near_duplicates.csv"
COLUMNS = ("kaggle_a", "split_a", "kaggle_b", "split_b")


def photos_with_a_twin(csv_path: str | Path, split: str = "test", elsewhere: tuple[str, ...] = ("train", "val")
                       ) -> dict[str, str]:
    """{stem of a `split` photo: its twin, as 'name (split, strength)'} for pairs that cross into `elsewhere`.

    Pairs inside the split itself do not count: they inflate nothing a model learned."""
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"no column {', '.join(missing)} (expected {', '.join(COLUMNS)})", csv_path, 1)
            rows = list(enumerate(reader, start=2))
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", csv_path) from None
    twins: dict[str, str] = {}
    for line, row in rows:
        if not all(row.get(c) for c in COLUMNS):
            raise UserError(f"empty field in {', '.join(c for c in COLUMNS if not row.get(c))}", csv_path, line)
        for this, other in (("a", "b"), ("b", "a")):
            if row[f"split_{this}"] == split and row[f"split_{other}"] in elsewhere:
                strength = row.get("strength") or "twin"
                twins.setdefault(Path(row[f"kaggle_{this}"]).stem,
                                 f"{row[f'kaggle_{other}']} ({row[f'split_{other}']}, {strength})")
    return twins


@dataclass(frozen=True)
class Subset:
    data_yaml: Path
    kept: int
    left_out: tuple[str, ...]  # stems found in the split and left out


def write_split_without(data: str | Path, split: str, exclude: set[str] | dict[str, str], out_dir: Path) -> Subset:
    """A data.yaml under out_dir whose `split` is the original one minus the `exclude` stems.

    Images and labels are symlinked, never copied or moved: the dataset stays as it is, and
    Ultralytics still finds each image's label through the images/ -> labels/ path rule."""
    config = load_dataset_config(data)
    if split not in config.split_images or not config.images_dir(split).is_dir():
        raise UserError(f"data.yaml has no '{split}' folder", config.yaml_path)
    images, labels = out_dir / split / "images", out_dir / split / "labels"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    kept, left_out = 0, []
    for image in list_images(config.images_dir(split)):
        if image.stem in exclude:
            left_out.append(image.stem)
            continue
        os.symlink(image.resolve(), images / image.name)
        label = config.labels_dir(split) / f"{image.stem}.txt"
        if label.exists():
            os.symlink(label.resolve(), labels / label.name)
        kept += 1
    # the other splits stay where they are (Ultralytics insists on train and val keys)
    splits = {name: str(folder) for name, folder in config.split_images.items()}
    splits[split] = str(images)
    target = out_dir / "data.yaml"
    atomic_write_text(target, yaml.safe_dump({"path": str(out_dir), **splits, "names": dict(enumerate(config.names))},
                                             sort_keys=False))
    return Subset(target, kept, tuple(left_out))
