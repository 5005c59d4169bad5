"""Honest test figures: the test photos with a twin in train or val are found and can be left out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from synthetic import write_yolo_dataset

from maskdet.errors import UserError
from maskdet.evaluation.twins import TWINS_CSV, photos_with_a_twin, write_split_without

ROOT = Path(__file__).resolve().parents[2]
HEADER = "kaggle_a,split_a,kaggle_b,split_b,evidence,strength\n"


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(f"{row}\n" for row in rows))
    return path


def test_only_test_photos_with_a_twin_in_train_or_val_count(tmp_path):
    csv_path = write_csv(tmp_path / "near_duplicates.csv", [
        "im1.png,train,im12.png,test,hash,identical-or-crop",      # test on the right
        "im13.png,test,im2.png,val,orb_inliers=40,near-duplicate(burst/similar)",  # test on the left, twin in val
        "im14.png,test,im15.png,test,hash,identical-or-crop",      # both in test: nothing learned from either
        "im3.png,train,im8.png,val,hash,identical-or-crop",        # no test photo
        "im12.png,test,im4.png,train,hash,identical-or-crop",      # a second twin of im12: listed once
    ])
    assert photos_with_a_twin(csv_path) == {"im12": "im1.png (train, identical-or-crop)",
                                            "im13": "im2.png (val, near-duplicate(burst/similar))"}
    assert set(photos_with_a_twin(csv_path, split="val", elsewhere=("train",))) == {"im8"}


def test_a_csv_without_the_expected_columns_is_a_one_line_error_naming_the_file(tmp_path):
    csv_path = write_csv(tmp_path / "pairs.csv", ["a.png,b.png"], header="first,second\n")
    with pytest.raises(UserError, match=r"pairs\.csv:1: no column kaggle_a, split_a, kaggle_b, split_b"):
        photos_with_a_twin(csv_path)
    bad_row = write_csv(tmp_path / "rows.csv", ["im1.png,train,,test,hash,x"])
    with pytest.raises(UserError, match=r"rows\.csv:2: empty field in kaggle_b"):
        photos_with_a_twin(bad_row)
    with pytest.raises(UserError, match="missing.csv: cannot read"):
        photos_with_a_twin(tmp_path / "missing.csv")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_yolo_dataset(tmp_path_factory.mktemp("tiny"))  # test split: im012 .. im015


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_split_without_twins_links_the_rest_and_leaves_the_dataset_untouched(dataset, tmp_path):
    before = tree(dataset.parent)
    subset = write_split_without(dataset, "test", {"im012": "twin", "im014": "twin", "absent": "twin"}, tmp_path / "sub")
    assert subset.left_out == ("im012", "im014") and subset.kept == 2
    images = sorted(p.name for p in (tmp_path / "sub" / "test" / "images").iterdir())
    assert images == ["im013.png", "im015.png"]
    label = tmp_path / "sub" / "test" / "labels" / "im013.txt"
    assert label.is_symlink() and label.read_text() == (dataset.parent / "test" / "labels" / "im013.txt").read_text()
    assert tree(dataset.parent) == before


def test_val_py_on_the_split_without_twins_evaluates_only_the_kept_photos(dataset, tmp_path):
    subset = write_split_without(dataset, "test", {"im012"}, tmp_path / "sub")
    proc = subprocess.run([sys.executable, str(ROOT / "val.py"), "--weights", str(ROOT / "models" / "best.pt"),
                           "--data", str(subset.data_yaml), "--split", "test", "--imgsz", "64", "--no-plots",
                           "--project", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    metrics = pd.read_csv(tmp_path / "runs" / "exp" / "metrics.csv", index_col="class")
    labels = [dataset.parent / "test" / "labels" / f"im{i:03d}.txt" for i in (13, 14, 15)]
    assert metrics.loc["all", "images"] == 3
    assert metrics.loc["all", "instances"] == sum(len(p.read_text().splitlines()) for p in labels)


@pytest.mark.skipif(not TWINS_CSV.exists(), reason=f"Kaggle near-duplicate list not found at {TWINS_CSV}")
def test_the_kaggle_test_photos_with_twins_are_all_in_the_fixed_test_split():
    twins = photos_with_a_twin(TWINS_CSV)
    test_stems = set((TWINS_CSV.parent / "splits" / "test.txt").read_text().split())
    assert twins and set(twins) <= test_stems
    assert len(twins) < len(test_stems) // 4  # a handful: most of the test split stays
