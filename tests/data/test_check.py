"""labeling/check.py: every problem is reported with file and line, --fix repairs only what is safe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdet.cli.check import main as check_main
from maskdet.config import load_dataset_config
from maskdet.data.check import check_dataset

ROOT = Path(__file__).resolve().parents[2]
NAMES = "{0: with_mask, 1: without_mask, 2: mask_weared_incorrect}"
GOOD = "0 0.5 0.5 0.2 0.2\n1 0.25 0.25 0.1 0.1\n"


def make_dataset(root: Path, labels: dict[str, dict[str, str]], extra_images: dict[str, list[str]] | None = None) -> Path:
    """Write real 64x48 PNGs with the given label texts per split; return the data.yaml path."""
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        for i, (stem, text) in enumerate(labels.get(split, {}).items()):
            img = np.full((48, 64, 3), (i * 40) % 255, np.uint8)
            cv2.putText(img, stem[:3], (2, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
            cv2.imwrite(str(root / split / "images" / f"{stem}.png"), img)
            if text is not None:
                (root / split / "labels" / f"{stem}.txt").write_text(text)
        for stem in (extra_images or {}).get(split, []):
            img = np.full((48, 64, 3), 7, np.uint8)
            img[0, 0] = len(stem)
            cv2.imwrite(str(root / split / "images" / f"{stem}.png"), img)
    yaml = root / "data.yaml"
    yaml.write_text(f"path: .\ntrain: train/images\nval: val/images\nnames: {NAMES}\n")
    return yaml


def run_check(yaml: Path, tmp_path: Path, *args: str) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, str(ROOT / "labeling" / "check.py"), "--data", str(yaml),
                           "--project", str(tmp_path / "runs"), *args], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout + proc.stderr


def test_a_clean_dataset_passes_and_is_described(tmp_path):
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD, "b": "2 0.5 0.5 0.3 0.4\n"}, "val": {"c": GOOD}},
                        extra_images={"train": ["background"]})
    code, out = run_check(yaml, tmp_path)
    assert code == 0, out
    assert "0 errors, 0 fixable, 0 warnings; 1 background images" in out
    train_row = next(line for line in out.splitlines() if line.startswith("train"))
    assert train_row.split()[1:5] == ["3", "1", "0", "3"]  # images, backgrounds, unusable, boxes
    run = tmp_path / "runs" / "exp"
    assert (run / "class_balance.png").stat().st_size > 10_000
    assert cv2.imread(str(run / "preview_train.jpg")) is not None
    assert (run / "splits.csv").read_text().startswith("split,images,backgrounds")


@pytest.mark.parametrize(
    ("text", "line", "code"),
    [
        ("0 0.5 0.5 0.2\n", 1, "fields"),
        ("0 0.5 0.5 0.2 0.2\n0 0.5 abc 0.2 0.2\n", 2, "number"),
        ("0 nan 0.5 0.2 0.2\n", 1, "nan"),
        ("\n\n3 0.5 0.5 0.2 0.2\n", 3, "class"),
        ("-1 0.5 0.5 0.2 0.2\n", 1, "class"),
        ("0.5 0.5 0.5 0.2 0.2\n", 1, "class"),
        ("0 0.95 0.5 0.2 0.2\n", 1, "bounds"),
        ("0 0.5 0.5 0 0.2\n", 1, "degenerate"),
        ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n", 2, "duplicate"),
        ("0 0.5 0.5 0.2 0.2\n1 150 120 30 40\n", 2, "pixels"),
    ],
)
def test_each_label_problem_is_reported_with_file_and_line_and_fails_the_check(tmp_path, text, line, code):
    yaml = make_dataset(tmp_path / "ds", {"train": {"bad": text}, "val": {"ok": GOOD}})
    exit_code, out = run_check(yaml, tmp_path, "--no-plots")
    label = tmp_path / "ds" / "train" / "labels" / "bad.txt"
    assert exit_code == 1
    assert f"{label}:{line}:" in out and f"[{code}]" in out, out


def test_image_and_folder_problems_are_reported(tmp_path):
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    (tmp_path / "ds" / "train" / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "ds" / "train" / "labels" / "orphan.txt").write_text(GOOD)
    (tmp_path / "ds" / "train" / "labels" / "classes.txt").write_text("without_mask\nwith_mask\nmask_weared_incorrect\n")
    report = check_dataset(load_dataset_config(yaml))
    by_code = {i.code: i for i in report.issues}
    assert by_code["corrupt"].path.name == "broken.jpg"
    assert by_code["orphan"].path.name == "orphan.txt" and by_code["orphan"].severity.value == "warning"
    assert "id 0 is 'without_mask' here but 'with_mask' in data.yaml" in by_code["classes-txt"].message
    assert not report.ok
    assert report.splits["train"].unusable_images == 1


def test_a_classes_txt_saved_as_utf16_is_one_issue_and_the_rest_is_still_checked(tmp_path):
    """Notepad's "Unicode" is UTF-16: the scan used to stop there, with no other issue and no summary."""
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": "0 nan 0.5 0.2 0.2\n"}})
    (tmp_path / "ds" / "train" / "labels" / "classes.txt").write_bytes(
        "with_mask\nwithout_mask\nmask_weared_incorrect\n".encode("utf-16"))
    code, out = run_check(yaml, tmp_path)
    assert code != 0
    assert f"{tmp_path / 'ds' / 'train' / 'labels' / 'classes.txt'}: error: saved as UTF-16 (Notepad's \"Unicode\"), " \
           "not UTF-8: save it again as UTF-8" in out
    assert "b.txt:1" in out and "errors," in out  # the val split's label was checked too, and summed up


def test_a_project_that_is_a_file_is_said_before_the_dataset_is_scanned(tmp_path):
    """The run folder is made first: a --project that cannot hold one was found only after the whole scan."""
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    (tmp_path / "runs").write_text("not a folder\n")
    code, out = run_check(yaml, tmp_path)
    assert code == 2 and "checking " not in out and out.strip().splitlines()[-1].startswith("error: "), out


def test_a_file_that_is_not_an_image_is_said_so_after_ultralytics_patched_pillow_and_nothing_is_installed(tmp_path,
                                                                                                         capfd):
    """Once imported, Ultralytics' Image.open tries to pip-install a HEIC plugin for a file Pillow cannot identify,
    then fails: check.py, merge.py and import_yolo.py said 'corrupt image: No module named pi_heif'."""
    import ultralytics  # noqa: F401 (what train.py, val.py and prelabel.py have imported by then)

    from maskdet.data.check import inspect_image

    fake = tmp_path / "fake.jpg"
    fake.write_text("hello\n")
    assert [issue.message for issue in inspect_image(fake)[2]] == ["not an image (no image format recognised)"]
    printed = capfd.readouterr()
    assert "AutoUpdate" not in printed.out + printed.err and "pi-heif" not in printed.out + printed.err


def test_ultralytics_installs_nothing_at_run_time_unless_asked():
    env = {k: v for k, v in os.environ.items() if k != "YOLO_AUTOINSTALL"}
    probe = "import maskdet, ultralytics.utils as u; print(u.AUTOINSTALL)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120).stdout.strip() == "False"
    asked = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120,
                           env={**env, "YOLO_AUTOINSTALL": "true"})
    assert asked.stdout.strip() == "True"


def test_label_and_image_files_too_big_to_be_either_are_reported_unread(tmp_path, tools):
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD, "big": GOOD}, "val": {"b": GOOD}})
    tools.sparse_file(tmp_path / "ds" / "train" / "labels" / "big.txt", 1 << 40)
    tools.sparse_file(tmp_path / "ds" / "val" / "images" / "huge.png", 1 << 40)
    report = check_dataset(load_dataset_config(yaml))
    unreadable = {i.path.name: i.message for i in report.issues if i.code == "unreadable"}
    assert set(unreadable) == {"big.txt", "huge.png"}, report.issues
    assert all("1,099,511,627,776 bytes, over the" in message for message in unreadable.values()), unreadable
    assert not report.ok


def test_the_same_image_in_two_splits_is_flagged_as_a_leak(tmp_path):
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    src = tmp_path / "ds" / "train" / "images" / "a.png"
    (tmp_path / "ds" / "val" / "images" / "copy_of_a.png").write_bytes(src.read_bytes())
    report = check_dataset(load_dataset_config(yaml))
    leak = [i for i in report.issues if i.code == "same-image"]
    assert len(leak) == 1 and "leaks between splits" in leak[0].message


def test_two_photos_sharing_one_label_file_are_an_error_naming_both_and_counted_once(tmp_path):
    # Ultralytics pairs a.png and a.jpg with the one a.txt: the second photo would train with the first's boxes.
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD, "c": GOOD}, "val": {"b": GOOD}})
    images = tmp_path / "ds" / "train" / "images"
    cv2.imwrite(str(images / "a.jpg"), np.full((48, 64, 3), 200, np.uint8))
    report = check_dataset(load_dataset_config(yaml))
    shared = [i for i in report.issues if i.code == "shared-label"]
    assert len(shared) == 1 and shared[0].severity.value == "error" and not report.ok
    assert shared[0].path == images / "a.png"
    assert (f"shares its label file {tmp_path / 'ds' / 'train' / 'labels' / 'a.txt'} with {images / 'a.jpg'}"
            in shared[0].message)
    assert report.splits["train"].total_boxes == 4, "a.txt's boxes counted once, c.txt's once"
    code, out = run_check(yaml, tmp_path, "--no-plots")
    assert code == 1 and "shares its label file" in out


def test_fix_repairs_only_safe_problems_and_backs_up_what_it_changes(tmp_path):
    text = "0 0.95 0.5 0.2 0.2\n1 0.5 0.5 0 0.1\n2 0.3 0.3 0.1 0.1\n2 0.3 0.3 0.1 0.1\nnot a box\n"
    yaml = make_dataset(tmp_path / "ds", {"train": {"bad": text, "good": GOOD}, "val": {"ok": GOOD}})
    label = tmp_path / "ds" / "train" / "labels" / "bad.txt"
    good_before = (tmp_path / "ds" / "train" / "labels" / "good.txt").stat().st_mtime_ns

    code, out = run_check(yaml, tmp_path, "--fix", "--no-plots")

    assert code == 1, "the malformed line is not a safe repair, so errors remain"
    assert label.read_text() == "0 0.925000 0.500000 0.150000 0.200000\n2 0.3 0.3 0.1 0.1\nnot a box\n"
    assert (tmp_path / "runs" / "exp" / "backup" / "train" / "labels" / "bad.txt").read_text() == text
    assert (tmp_path / "ds" / "train" / "labels" / "good.txt").stat().st_mtime_ns == good_before
    assert "fixed 1 label files" in out

    label.write_text(label.read_text().replace("not a box\n", ""))
    code, out = run_check(yaml, tmp_path, "--no-plots")
    assert code == 0, out


def test_fix_never_repairs_pixel_coordinates_and_leaves_the_file_as_it_was(tmp_path):
    # Clipping would drop the first box and stretch the second over the whole photo: an emptied file would
    # then say "a photo without faces", and the next check would pass.
    text = "1 150 120 30 40\n0 0.5 0.5 2 2\n"
    yaml = make_dataset(tmp_path / "ds", {"train": {"px": text, "good": GOOD}, "val": {"ok": GOOD}})
    label = tmp_path / "ds" / "train" / "labels" / "px.txt"

    code, out = run_check(yaml, tmp_path, "--fix", "--no-plots")

    assert code == 1, out
    assert f"{label}:1: error: x=150 y=120 w=30 h=40 looks like pixel coordinates, not YOLO's 0-1 fractions" in out
    assert f"{label}:2: error:" in out, out
    assert "2 errors, 0 fixable" in out and "0 background images" in out, out
    assert label.read_text() == text
    assert not (tmp_path / "runs" / "exp" / "backup").exists()
    assert run_check(yaml, tmp_path, "--no-plots")[0] == 1, "the next check still sees the problem"


def test_fix_still_clips_a_box_over_the_edge_beside_a_pixel_line_and_backs_the_file_up(tmp_path):
    text = "1 150 120 30 40\n0 0.95 0.5 0.2 0.2\n"
    yaml = make_dataset(tmp_path / "ds", {"train": {"mixed": text}, "val": {"ok": GOOD}})
    label = tmp_path / "ds" / "train" / "labels" / "mixed.txt"

    code, out = run_check(yaml, tmp_path, "--fix", "--no-plots")

    assert code == 1, "the pixel line is still an error"
    assert label.read_text() == "1 150 120 30 40\n0 0.925000 0.500000 0.150000 0.200000\n"
    assert (tmp_path / "runs" / "exp" / "backup" / "train" / "labels" / "mixed.txt").read_text() == text


def test_an_empty_or_missing_test_split_is_a_warning_not_an_error(tmp_path):
    # split.py --ratios 0.8 0.2 0 builds no test split; training never reads one.
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    yaml.write_text(yaml.read_text() + "test: test/images\n")
    code, out = run_check(yaml, tmp_path, "--no-plots")
    assert code == 0, out
    assert f"{tmp_path / 'ds' / 'test' / 'images'}: warning: test images folder does not exist" in out
    (tmp_path / "ds" / "test" / "images").mkdir(parents=True)
    code, out = run_check(yaml, tmp_path, "--no-plots")
    assert code == 0 and "warning: test has no images" in out, out


def test_fix_is_exit_zero_when_everything_left_was_fixable(tmp_path):
    yaml = make_dataset(tmp_path / "ds", {"train": {"dup": GOOD + GOOD}, "val": {"ok": GOOD}})
    assert check_main(["--data", str(yaml), "--project", str(tmp_path / "runs"), "--no-plots"]) == 1
    assert check_main(["--data", str(yaml), "--project", str(tmp_path / "runs"), "--no-plots", "--fix"]) == 0
    assert check_main(["--data", str(yaml), "--project", str(tmp_path / "runs"), "--no-plots"]) == 0


def test_garbage_everywhere_is_reported_never_raised(tmp_path):
    rng = np.random.default_rng(1)
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    for i in range(20):
        (tmp_path / "ds" / "train" / "images" / f"junk{i}.png").write_bytes(rng.bytes(int(rng.integers(0, 300))))
        (tmp_path / "ds" / "train" / "labels" / f"junk{i}.txt").write_bytes(rng.bytes(int(rng.integers(0, 300))))
    code, out = run_check(yaml, tmp_path)
    assert code == 1
    assert out.count("[corrupt]") == 20


def test_runs_are_numbered_like_yolov5(tmp_path):
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    for _ in range(3):
        run_check(yaml, tmp_path, "--no-plots")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["exp", "exp2", "exp3"]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("names: [a, b\n", "not valid YAML"),
        ("train: x\n", "no 'names'"),
        ("names: {0: a, 2: b}\n", "must be 0..1"),
    ],
)
def test_a_broken_data_yaml_is_one_line_error_naming_the_file(tmp_path, yaml_text, message):
    yaml = tmp_path / "data.yaml"
    yaml.write_text(yaml_text)
    proc = subprocess.run([sys.executable, str(ROOT / "labeling" / "check.py"), "--data", str(yaml)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {yaml}") and message in proc.stderr


@pytest.mark.parametrize(("splits", "missing"), [("", "no 'train' and no 'val' folder"), ("train: train/images\n", "no 'val' folder")])
def test_a_data_yaml_without_train_or_val_is_one_line_error_and_no_run_folder(tmp_path, splits, missing):
    yaml = tmp_path / "data.yaml"
    (tmp_path / "train" / "images").mkdir(parents=True)
    yaml.write_text(f"path: .\n{splits}names: {NAMES}\n")
    proc = subprocess.run([sys.executable, str(ROOT / "labeling" / "check.py"), "--data", str(yaml),
                           "--project", str(tmp_path / "runs")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"error: {yaml}: names {missing}") and "python labeling/split.py" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_the_bundled_sample_passes(tmp_path):
    code, out = run_check(ROOT / "samples" / "data.yaml", tmp_path, "--no-plots")
    assert code == 0, out


def test_a_file_that_is_no_image_is_said_so_in_words_not_with_a_python_repr(tmp_path):
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    junk = tmp_path / "ds" / "train" / "images" / "notes.png"
    junk.write_text("shopping list, not a photo")
    code, out = run_check(yaml, tmp_path, "--no-plots")
    assert code == 1
    line = next(line for line in out.splitlines() if str(junk) in line)
    assert "not an image" in line and "BytesIO" not in line and " at 0x" not in line, line


def write_huge_png(path: Path, width: int, height: int) -> Path:
    """A real, valid image of many megapixels that stays small on disk (1 bit per pixel, all black)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("1", (width, height)).save(path)
    return path


def test_a_valid_image_over_pil_s_limit_is_too_large_for_training_not_corrupt(tmp_path):
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    huge = write_huge_png(tmp_path / "ds" / "train" / "images" / "panorama.png", 16000, 12000)  # 192 megapixels
    code, out = run_check(yaml, tmp_path, "--no-plots")
    assert code == 1
    line = next(line for line in out.splitlines() if str(huge) in line)
    assert "error" in line and "too large for training" in line and "192 megapixels" in line, line
    assert "179-megapixel limit" in line and "corrupt" not in line, line


def test_a_very_large_image_is_one_warning_line_not_a_raw_python_warning(tmp_path):
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    big = write_huge_png(tmp_path / "ds" / "train" / "images" / "big.png", 10000, 10000)  # 100 megapixels
    _, out = run_check(yaml, tmp_path, "--no-plots")
    assert "DecompressionBombWarning" not in out, out
    line = next(line for line in out.splitlines() if str(big) in line)
    assert "warning" in line and "100 megapixels" in line, line


def test_the_reports_preview_leaves_out_a_photo_over_the_pixel_limit_instead_of_decoding_it(tmp_path):
    from maskdet.data.dataset_report import render_preview

    huge = write_huge_png(tmp_path / "images" / "panorama.png", 16000, 12000)  # 192 megapixels: 576 MB decoded
    assert render_preview(huge, ("with_mask", "without_mask", "mask_weared_incorrect")) is None
    fine = tmp_path / "images" / "fine.png"
    cv2.imwrite(str(fine), np.full((48, 64, 3), 90, np.uint8))
    assert render_preview(fine, ("with_mask", "without_mask", "mask_weared_incorrect")).shape == (48, 64, 3)


def make_flat_dataset(root: Path, label_text: str, labels_in: str) -> Path:
    """Split folders that are not named images/ (train/, val/), labels either 'beside' the images or in '../labels'."""
    for split in ("train", "val"):
        img = np.full((48, 64, 3), 90 if split == "train" else 150, np.uint8)
        (root / split).mkdir(parents=True)
        cv2.imwrite(str(root / split / "a.png"), img)
        labels = root / split if labels_in == "beside" else root / "labels"
        labels.mkdir(parents=True, exist_ok=True)
        (labels / "a.txt").write_text(label_text)
    yaml = root / "data.yaml"
    yaml.write_text(f"path: .\ntrain: train\nval: val\nnames: {NAMES}\n")
    return yaml


def test_labels_beside_images_outside_an_images_folder_are_checked_as_ultralytics_reads_them(tmp_path):
    # Ultralytics reads train/a.txt for train/a.png: a class id out of range there breaks training.
    yaml = make_flat_dataset(tmp_path / "ds", "7 0.5 0.5 0.2 0.2\n", labels_in="beside")
    report = check_dataset(load_dataset_config(yaml))
    assert not report.ok
    assert any(i.code == "class" and i.path == tmp_path / "ds" / "train" / "a.txt" for i in report.issues)


def test_labels_in_a_sibling_labels_folder_that_ultralytics_ignores_are_not_counted(tmp_path):
    # ../labels/a.txt is not where Ultralytics looks for train/a.png: it would train on no boxes.
    yaml = make_flat_dataset(tmp_path / "ds", GOOD, labels_in="sibling")
    report = check_dataset(load_dataset_config(yaml))
    assert report.splits["train"].total_boxes == 0 and report.splits["train"].backgrounds == 1
    unread = [i for i in report.issues if i.code == "labels-unread"]
    assert unread and "ds/labels" in unread[0].message and "beside" in unread[0].message


def test_images_training_would_drop_or_rewrite_are_said_so(tmp_path):
    """A JPEG cut short, and a GIF named .jpg, are dropped by training (and refused by detect.py): errors that
    block it, counted unusable. A JPEG with bytes after its end marker is re-saved in place by Ultralytics."""
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    images = tmp_path / "ds" / "train" / "images"
    jpeg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))[1].tobytes()
    (images / "cut.jpg").write_bytes(jpeg[:-2])  # only the end marker missing: neither OpenCV nor PIL decode it
    (images / "padded.jpg").write_bytes(jpeg + b"\x00" * 16)
    from PIL import Image

    Image.new("RGB", (64, 48), (90, 90, 90)).save(images / "anim.jpg", format="GIF")
    report = check_dataset(load_dataset_config(yaml))
    by_name = {i.path.name: i for i in report.issues if i.path.parent == images}
    assert (by_name["cut.jpg"].code, by_name["cut.jpg"].severity.value) == ("truncated", "error")
    assert "training drops it with its boxes" in by_name["cut.jpg"].message
    assert (by_name["anim.jpg"].code, by_name["anim.jpg"].severity.value) == ("format", "error")
    assert by_name["anim.jpg"].message.startswith("a GIF image named .jpg: training drops it")
    assert (by_name["padded.jpg"].code, by_name["padded.jpg"].severity.value) == ("jpeg-trailer", "warning")
    assert report.splits["train"].unusable_images == 2 and not report.ok


def test_the_size_of_a_photo_stored_sideways_is_its_upright_size(tmp_path):
    from PIL import Image

    from maskdet.data.check import inspect_image

    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated a quarter turn
    Image.new("RGB", (64, 48), (90, 90, 90)).save(path, exif=exif.tobytes())
    size, _, issues = inspect_image(path)
    assert size == (48, 64) and not issues


def test_class_names_are_printed_with_control_characters_escaped(tmp_path):
    yaml = make_dataset(tmp_path / "ds", {"train": {"a": GOOD}, "val": {"b": GOOD}})
    yaml.write_text(yaml.read_text().replace("0: with_mask", '0: "\\e]0;owned\\amask"'))
    code, out = run_check(yaml, tmp_path, "--no-plots")
    assert code == 0, out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07mask" in out  # in the first line and the tables
