"""train_second_stage.py's crops (maskdet/training/second_stage.py): every labelled face of each split cut
by the same face_crop every run uses, into Ultralytics' classify layout, the rare classes' train crops
repeated (hard links), tiny boxes skipped, an existing folder kept unless forced."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from maskdet.errors import UserError
from maskdet.inference.second_stage import face_crop
from maskdet.training.second_stage import balance_repeats, build_crops


def test_repeats_balance_each_class_towards_the_largest():
    from collections import Counter

    assert balance_repeats(Counter(with_mask=4000, without_mask=1000, mask_weared_incorrect=250)) == \
        {"with_mask": 1, "without_mask": 2, "mask_weared_incorrect": 4}
    assert balance_repeats(Counter(with_mask=4000, mask_weared_incorrect=250), power=1.0)["mask_weared_incorrect"] == 16


def test_crops_hold_every_labelled_face_by_split_and_class(data_yaml, make_labels, tmp_path):
    root = tmp_path / "data"
    picture = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    for split, name in (("train", "a"), ("train", "b"), ("val", "c")):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / split / "images" / f"{name}.png"), picture)
    make_labels(root / "train" / "labels" / "a.txt", ["0 0.25 0.25 0.2 0.3", "2 0.7 0.5 0.15 0.2", "1 0.5 0.9 0.02 0.02"])
    make_labels(root / "train" / "labels" / "b.txt", ["0 0.5 0.5 0.3 0.3", "0 0.2 0.8 0.2 0.2", "0 0.8 0.2 0.2 0.2", "0 0.5 0.2 0.1 0.2"])
    make_labels(root / "val" / "labels" / "c.txt", ["1 0.5 0.5 0.3 0.4"])
    out = tmp_path / "crops"
    found = build_crops(data_yaml, out, margin=0.15, size=48)
    assert found["train"] == {"with_mask": 5, "mask_weared_incorrect": 1}  # the 3-px face is skipped
    assert found["val"] == {"without_mask": 1}
    rare = sorted(p.name for p in (out / "train" / "mask_weared_incorrect").iterdir())
    assert rare == ["a_1.png", "a_1_r1.png"]  # (5 / 1) ** 0.5 rounds to 2 copies: a hard link, no extra bytes
    assert os.path.samefile(out / "train" / "mask_weared_incorrect" / "a_1.png", out / "train" / "mask_weared_incorrect" / "a_1_r1.png")
    assert len(list((out / "train" / "with_mask").iterdir())) == 5 and not list((out / "train" / "without_mask").iterdir())
    crop = cv2.imread(str(out / "val" / "without_mask" / "c_0.png"))
    assert np.array_equal(crop, face_crop(picture, [56, 36, 104, 84], 0.15, 48))  # the crop every run cuts
    with pytest.raises(UserError, match="already exists"):
        build_crops(data_yaml, out)
    assert build_crops(data_yaml, out, force=True)["val"] == {"without_mask": 1}
