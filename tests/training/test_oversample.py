"""--oversample repeats the train images that hold rare classes, without touching the dataset."""

from __future__ import annotations

import math

import pytest
import yaml
from synthetic import write_yolo_dataset

from maskdet.errors import UserError
from maskdet.training.oversample import class_repeat_factors, image_repeats, write_oversampled_list
from maskdet.training.trainer import write_resolved_data_yaml

# ten images: class 0 on all of them, class 1 on half, class 2 on one, and one image with no face
IMAGES = [{0}, {0}, {0}, {0}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1, 2}, set()]


def test_a_class_repeats_by_the_square_root_of_how_much_rarer_than_the_threshold_it_is():
    factors = class_repeat_factors(IMAGES, threshold=0.8)
    assert factors[0] == 1.0  # on 9 images in 10: common, never repeated
    assert factors[1] == pytest.approx(math.sqrt(0.8 / 0.5))
    assert factors[2] == pytest.approx(math.sqrt(0.8 / 0.1))


def test_an_image_repeats_as_often_as_its_rarest_class_and_a_background_image_once():
    assert image_repeats(IMAGES, threshold=0.8) == [1, 1, 1, 1, 1, 1, 1, 1, 3, 1]
    assert image_repeats(IMAGES, threshold=2.0) == [1, 1, 1, 1, 2, 2, 2, 2, 4, 1]


def test_a_threshold_below_every_class_frequency_repeats_nothing():
    assert image_repeats(IMAGES, threshold=0.05) == [1] * len(IMAGES)


def read_train_yaml(data_yaml):
    return yaml.safe_load(data_yaml.read_text())["train"]


def test_the_run_trains_on_a_repeated_list_and_the_dataset_is_untouched(tmp_path):
    data = write_yolo_dataset(tmp_path / "data", {"train": 8, "val": 2})
    train_dir = data.parent / "train"
    before = {p: p.read_bytes() for p in train_dir.rglob("*") if p.is_file()}
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    train = read_train_yaml(write_resolved_data_yaml(data, run_dir, oversample=10.0))

    listed = (run_dir / "train_oversampled.txt").read_text().splitlines()
    assert train == str(run_dir / "train_oversampled.txt")
    images = sorted((train_dir / "images").iterdir())
    assert sorted(set(listed)) == [str(p) for p in images]  # every image, by absolute path
    assert len(listed) > len(images)  # and some of them more than once
    assert {p: p.read_bytes() for p in train_dir.rglob("*") if p.is_file()} == before


def test_without_oversampling_the_run_trains_on_the_train_folder(tmp_path):
    data = write_yolo_dataset(tmp_path / "data", {"train": 2, "val": 2})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert read_train_yaml(write_resolved_data_yaml(data, run_dir)) == str(data.parent / "train" / "images")
    assert not (run_dir / "train_oversampled.txt").exists()


def test_a_negative_threshold_is_a_clear_error(tmp_path):
    data = write_yolo_dataset(tmp_path / "data", {"train": 2})
    with pytest.raises(UserError, match="--oversample must be 0"):
        write_resolved_data_yaml(data, tmp_path, oversample=-1)


def test_the_summary_names_the_repeated_classes(tmp_path):
    data = write_yolo_dataset(tmp_path / "data", {"train": 8})
    summary = write_oversampled_list(data.parent / "train" / "images", 10.0, tmp_path / "list.txt")
    names = ("with_mask", "without_mask", "mask_weared_incorrect")
    text = summary.describe(names)
    assert text.startswith(f"oversampling: 8 train images -> {summary.entries} per epoch (images with ")
    repeated = {c: r for c, r in summary.class_repeats.items() if r > 1}
    assert repeated
    assert all(f"{names[c]} x{r}" in text for c, r in repeated.items())
