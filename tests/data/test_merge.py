"""labeling/merge.py: reviewed photos join the dataset; what is there stays where it is, duplicates
are skipped and reported, the user's folders are only read, and check.py passes on the result."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
from synthetic import make_sample, write_yolo_dataset

ROOT = Path(__file__).resolve().parents[2]


def merge(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "labeling" / "merge.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def check(data_yaml: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "labeling" / "check.py"), "--data", str(data_yaml), "--no-plots",
                           "--project", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120, cwd=ROOT)


def new_photos(folder: Path, seeds: range, size: tuple[int, int] = (160, 120)) -> list[str]:
    """Cartoon photos with faces and their YOLO labels beside them, as prelabel.py and a review leave them."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for seed in seeds:
        image, boxes = make_sample.make_image(seed, size=(480, 320))
        cv2.imwrite(str(folder / f"new{seed}.png"), cv2.resize(image, size))
        (folder / f"new{seed}.txt").write_text("".join(f"{b.to_line()}\n" for b in boxes))
        names.append(f"new{seed}.png")
    (folder / "classes.txt").write_text("with_mask\nwithout_mask\nmask_weared_incorrect\n")
    return names


def dataset_images(root: Path) -> dict[str, set[str]]:
    return {split: {p.name for p in (root / split / "images").iterdir()} for split in ("train", "val", "test")}


def test_new_photos_join_the_dataset_existing_ones_stay_and_check_passes(tmp_path, tools):
    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 4, "val": 2, "test": 2})
    before = tools.snapshot(tmp_path / "data")
    photos = tmp_path / "new_photos"
    added = new_photos(photos, range(100, 110))
    # the same photo as one already in the training split, under another name
    shutil.copy(tmp_path / "data" / "train" / "images" / "im001.png", photos / "holiday.png")
    shutil.copy(tmp_path / "data" / "train" / "labels" / "im001.txt", photos / "holiday.txt")
    shutil.copy(photos / "new100.png", photos / "new100_again.png")  # and a photo twice among the new ones
    shutil.copy(photos / "new100.txt", photos / "new100_again.txt")
    mine = tools.snapshot(photos)

    proc = merge("--images", photos, "--into", data_yaml)

    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    after = tools.snapshot(tmp_path / "data")
    assert {k: v for k, v in after.items() if k in before} == before  # nothing existing moved or rewritten
    assert tools.snapshot(photos) == mine  # the user's folder is only read
    split_of = {name: split for split, names in dataset_images(tmp_path / "data").items() for name in names}
    assert sorted(n for n in split_of if n.startswith("new")) == sorted(added)
    assert {split_of[n] for n in added} == {"train", "val", "test"}
    for name in added:
        stem = Path(name).stem
        assert (tmp_path / "data" / split_of[name] / "labels" / f"{stem}.txt").read_text() == (photos / f"{stem}.txt").read_text()
    assert "holiday.png" not in split_of and "new100_again.png" not in split_of
    assert f"holiday.png: same content as {tmp_path / 'data' / 'train' / 'images' / 'im001.png'}" in proc.stdout
    assert "new100_again.png: same content as" in proc.stdout
    assert "added 10 photos" in proc.stdout and "skipped 2 already in the dataset" in proc.stdout
    assert "fine-tunes the shipped model, models/best.pt; --model yolo11n.pt starts from COCO" in proc.stdout

    checked = check(data_yaml, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    again = merge("--images", photos, "--into", data_yaml)  # merging twice adds nothing
    assert again.returncode == 0 and "added 0 photos" in again.stdout and "skipped 12 already in the dataset" in again.stdout


def test_the_rare_class_reaches_every_split(tmp_path):
    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 2, "val": 1, "test": 1})
    photos = tmp_path / "photos"
    new_photos(photos, range(200, 209))
    for i, txt in enumerate(sorted(photos.glob("new*.txt"))):
        txt.write_text("2 0.5 0.5 0.2 0.2\n" if i < 3 else "0 0.5 0.5 0.2 0.2\n")  # 3 photos of the rare class
    proc = merge("--images", photos, "--into", data_yaml, "--ratios", "1", "1", "1")
    assert proc.returncode == 0, proc.stderr
    for split in ("train", "val", "test"):
        rare = [p for p in (tmp_path / "data" / split / "labels").glob("new*.txt") if p.read_text().startswith("2 ")]
        assert len(rare) == 1, split


def test_photos_that_cannot_be_added_as_they_are_are_skipped_and_reported(tmp_path, tools):
    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 2, "val": 1, "test": 1})
    photos = tmp_path / "photos"
    new_photos(photos, range(300, 304))
    (photos / "new300.txt").unlink()  # never labelled
    (photos / "new301.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n")  # a class data.yaml lacks
    cv2.imwrite(str(photos / "im000.png"), cv2.imread(str(photos / "new302.png"))[:, ::-1])  # a name the dataset has
    (photos / "im000.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    proc = merge("--images", photos, "--into", data_yaml)
    assert proc.returncode == 1, proc.stderr  # as detect.py and voc2yolo.py: not everything was done
    assert "new300.png: no label file" in proc.stdout
    assert f"{photos / 'new301.txt'}:2: error: class id 7 out of range" in proc.stdout
    assert "im000.png: a different photo with this name is already there" in proc.stdout
    assert "added 2 photos" in proc.stdout and "3 that cannot be added" in proc.stdout
    assert check(data_yaml, tmp_path).returncode == 0


def test_a_dry_run_writes_nothing_and_a_test_ratio_of_zero_leaves_the_test_split_alone(tmp_path, tools):
    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 2, "val": 1, "test": 1})
    photos = tmp_path / "photos"
    new_photos(photos, range(400, 406))
    before = tools.snapshot(tmp_path / "data")
    proc = merge("--images", photos, "--into", data_yaml, "--dry-run")
    assert proc.returncode == 0 and "would add 6 photos" in proc.stdout
    assert tools.snapshot(tmp_path / "data") == before
    proc = merge("--images", photos, "--into", data_yaml, "--ratios", "0.8", "0.2", "0")
    assert proc.returncode == 0 and "added 6 photos" in proc.stdout
    assert dataset_images(tmp_path / "data")["test"] == {"im003.png"}


def test_labels_whose_ids_mean_other_classes_are_refused_in_one_line(tmp_path, tools):
    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 2, "val": 1})
    photos = tmp_path / "photos"
    new_photos(photos, range(500, 502))
    (photos / "classes.txt").write_text("without_mask\nwith_mask\nmask_weared_incorrect\n")
    (photos / "new500.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    line = tools.assert_one_line_error(merge("--images", photos, "--into", data_yaml), "classes.txt", "new500.txt:1",
                                       "merge again")
    assert "--force" not in line
    assert dataset_images_count(tmp_path / "data") == 3


def dataset_images_count(root: Path) -> int:
    return sum(1 for _ in root.glob("*/images/*.png"))


def test_the_whole_loop_prelabel_review_merge_then_check_passes(tmp_path, photo_model, make_photo):
    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 2, "val": 1, "test": 1})
    photos = tmp_path / "new_photos"
    for i in range(4):
        make_photo(photos / f"shot{i}.png", 50 + i)
    model = photo_model([(16, 12, 48, 60, 0, 0.9), (80, 30, 120, 90, 1, 0.6)])
    pre = subprocess.run([sys.executable, str(ROOT / "labeling" / "prelabel.py"), "--images", str(photos), "--weights",
                          str(model), "--project", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert pre.returncode == 0, pre.stderr
    (photos / "shot0.txt").write_text("2 0.625 0.5 0.25 0.5\n")  # the person's review: one box, another class
    proc = merge("--images", photos, "--into", data_yaml)
    assert proc.returncode == 0 and "added 4 photos" in proc.stdout, proc.stdout + proc.stderr
    merged = next((tmp_path / "data").glob("*/labels/shot0.txt"))
    assert merged.read_text() == "2 0.625 0.5 0.25 0.5\n"
    checked = check(data_yaml, tmp_path)
    assert checked.returncode == 0, checked.stdout
