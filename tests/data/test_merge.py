"""labeling/merge.py: reviewed photos join the dataset; what is there stays where it is, duplicates
are skipped and reported, the user's folders are only read, and check.py passes on the result."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
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


def merge_in_process(*args: str | Path, capsys) -> tuple[int, str]:
    from maskdet.cli import merge as merge_cli
    from maskdet.errors import run_cli

    code = run_cli(merge_cli.main, [str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out + err


def test_a_merge_stopped_by_ctrl_c_is_completed_by_running_it_again(tmp_path, monkeypatch, capsys):
    import maskdet.data.merge as merging

    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 4, "val": 2, "test": 2})
    photos = tmp_path / "photos"
    added = new_photos(photos, range(600, 610))
    real_copy, copies = merging.atomic_copy, []

    def copy_then_ctrl_c(src, dst):  # Ctrl-C after the third photo's label, before the photo itself
        copies.append(dst)
        if len(copies) == 6:
            raise KeyboardInterrupt
        real_copy(src, dst)

    monkeypatch.setattr(merging, "atomic_copy", copy_then_ctrl_c)
    code, out = merge_in_process("--images", photos, "--into", data_yaml, capsys=capsys)
    assert code == 130
    assert "stopped after 2 of 10 photos: run the same command again to add the rest" in out
    monkeypatch.setattr(merging, "atomic_copy", real_copy)
    code, out = merge_in_process("--images", photos, "--into", data_yaml, capsys=capsys)
    assert code == 0, out
    assert "added 8 photos" in out and "skipped 2 already in the dataset" in out
    split_of = {name: split for split, names in dataset_images(tmp_path / "data").items() for name in names}
    assert sorted(n for n in split_of if n.startswith("new")) == sorted(added)
    for name in added:  # each photo beside its own label, the interrupted one in the split its label went to
        stem = Path(name).stem
        assert (tmp_path / "data" / split_of[name] / "labels" / f"{stem}.txt").read_text() == (photos / f"{stem}.txt").read_text()
    labels = list((tmp_path / "data").glob("*/labels/new*.txt"))
    assert len(labels) == len(added), "no label left behind in another split"
    assert check(data_yaml, tmp_path).returncode == 0


def test_a_merge_stopped_halfway_and_run_again_gives_each_split_its_share(tmp_path, monkeypatch, capsys):
    """Run again, a merge splits only the photos still to copy: had it copied train first, a stop halfway would
    have given train every photo copied so far and left val and test short for good."""
    import maskdet.data.merge as merging

    for name in ("whole", "stopped"):
        write_yolo_dataset(tmp_path / name, counts={"train": 2, "val": 1, "test": 1})
    photos = tmp_path / "photos"
    new_photos(photos, range(700, 780))
    code, _ = merge_in_process("--images", photos, "--into", tmp_path / "whole" / "data.yaml", capsys=capsys)
    assert code == 0
    planned = {split: len(names) for split, names in dataset_images(tmp_path / "whole").items()}
    real_copy, copies = merging.atomic_copy, []

    def copy_then_ctrl_c(src, dst):  # Ctrl-C after 40 of the 80 photos (a label and a photo each)
        copies.append(dst)
        if len(copies) > 80:
            raise KeyboardInterrupt
        real_copy(src, dst)

    monkeypatch.setattr(merging, "atomic_copy", copy_then_ctrl_c)
    assert merge_in_process("--images", photos, "--into", tmp_path / "stopped" / "data.yaml", capsys=capsys)[0] == 130
    monkeypatch.setattr(merging, "atomic_copy", real_copy)
    assert merge_in_process("--images", photos, "--into", tmp_path / "stopped" / "data.yaml", capsys=capsys)[0] == 0
    got = {split: len(names) for split, names in dataset_images(tmp_path / "stopped").items()}
    assert sum(got.values()) == sum(planned.values())
    assert all(abs(got[split] - planned[split]) <= 2 for split in planned), (got, planned)  # the rare class rounds up


def test_a_different_label_already_there_without_its_photo_is_not_overwritten(tmp_path, capsys):
    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 2, "val": 1, "test": 1})
    photos = tmp_path / "photos"
    new_photos(photos, range(700, 703))
    stray = tmp_path / "data" / "val" / "labels" / "new701.txt"
    stray.write_text("2 0.5 0.5 0.1 0.1\n")  # someone's, not what new701.txt says
    code, out = merge_in_process("--images", photos, "--into", data_yaml, capsys=capsys)
    assert code == 1
    assert (f"{photos / 'new701.png'}: a different label file with this name is already in the dataset without its "
            f"photo ({stray})") in out
    assert stray.read_text() == "2 0.5 0.5 0.1 0.1\n"
    assert "added 2 photos" in out and not list((tmp_path / "data").glob("*/images/new701.png"))


def test_the_summary_says_what_each_split_got_and_holds_without_calling_it_empty(tmp_path, capsys):
    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 4, "val": 8, "test": 2})
    photos = tmp_path / "photos"
    new_photos(photos, range(800, 801))
    code, out = merge_in_process("--images", photos, "--into", data_yaml, "--dry-run", capsys=capsys)
    assert code == 0
    assert "empty" not in out and "nothing to measure" not in out
    lines = {line.split()[0]: line.strip() for line in out.splitlines() if line.startswith("  ")}
    assert lines["val"] == "val   +0 photos, +0 boxes; would then hold 8 photos"
    assert lines["train"].startswith("train +1 photos, +") and lines["train"].endswith("would then hold 5 photos")
    code, out = merge_in_process("--images", photos, "--into", data_yaml, capsys=capsys)
    assert "val   +0 photos, +0 boxes; now holds 8 photos" in out


def test_ratios_too_large_to_add_up_are_refused(tmp_path, capsys):
    data_yaml = write_yolo_dataset(tmp_path / "data", counts={"train": 2, "val": 1})
    photos = tmp_path / "photos"
    new_photos(photos, range(900, 902))
    from maskdet.cli import merge as merge_cli

    with pytest.raises(SystemExit) as stop:
        merge_cli.main(["--images", str(photos), "--into", str(data_yaml), "--ratios", "1e308", "1e308", "1e308"])
    assert stop.value.code == 2
    assert "argument --ratios: must be at least 0 and at most 1000000, got 1e308" in capsys.readouterr().err
