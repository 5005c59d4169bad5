"""labeling/prelabel.py: the model draws the boxes first, where labelImg reads them, without touching
anyone's labels, and says which photos to review first."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synthetic import huge_png

from maskdet.data.prelabel import prelabel_folder
from maskdet.data.review import read_review_order

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["with_mask", "without_mask", "mask_weared_incorrect"]
# On a 160x120 photo: a sure with_mask face, a fairly sure without_mask one, and a 0.1 candidate.
BOXES = [(16, 12, 48, 60, 0, 0.9), (80, 30, 120, 90, 1, 0.6), (130, 10, 150, 30, 2, 0.1)]


def prelabel(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "labeling" / "prelabel.py"), *map(str, args), "--project", cwd / "runs"],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def rows(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines()]


def sample_photos(folder: Path, n: int) -> list[str]:
    """n copies of the sample photo (one face the shipped model finds), p0.jpg ... in the order prelabel takes them."""
    folder.mkdir(parents=True)
    names = [f"p{i}.jpg" for i in range(n)]
    for name in names:
        shutil.copyfile(ROOT / "samples" / "images" / "astronaut.jpg", folder / name)
    return names


def start_prelabel_and_wait_for_labels(photos: Path, labels: int, cwd: Path) -> subprocess.Popen:
    """prelabel.py with the shipped model, running, once `labels` label files are written (the run is then mid-way)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "labeling" / "prelabel.py"), "--images", str(photos),
                             "--weights", str(ROOT / "models" / "best.onnx"), "--project", str(cwd / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    deadline = time.monotonic() + 120
    while len(label_files(photos)) < labels:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no label files written in 120 s"
        time.sleep(0.02)  # polling for the files, not waiting a guessed time
    return proc


def label_files(photos: Path) -> list[str]:
    return sorted(p.name for p in photos.glob("p*.txt"))


def test_prelabels_land_beside_the_photos_with_classes_txt_and_a_summary(tmp_path, photo_model, make_photo):
    photos = tmp_path / "new_photos"
    for i, name in enumerate(("a.png", "b.png")):
        make_photo(photos / name, 60 + i)
    proc = prelabel("--images", photos, "--weights", photo_model(BOXES), "--conf", "0.35", cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    # labelImg (label.py's default for a plain folder) reads a.txt beside a.png, with data.yaml's ids
    assert sum(rows(photos / "a.txt"), []) == pytest.approx([0, 0.2, 0.3, 0.2, 0.4, 1, 0.625, 0.5, 0.25, 0.5], abs=1e-5)
    assert (photos / "classes.txt").read_text().split() == NAMES
    out = proc.stdout
    assert "2 photos: 2 pre-labelled" in out and "0 already labelled and kept" in out
    assert "boxes: 4 (2 with_mask, 2 without_mask)" in out and "no face found in 0 photos" in out
    assert f"--order {tmp_path / 'runs' / 'exp' / 'review.txt'}" in out
    assert read_review_order(tmp_path / "runs" / "exp" / "review.txt") == ["a.png", "b.png"]


def test_a_folder_named_images_gets_its_labels_in_the_sibling_labels_folder(tmp_path, photo_model, make_photo):
    make_photo(tmp_path / "new" / "images" / "a.png", 60)
    proc = prelabel("--images", tmp_path / "new" / "images", "--weights", photo_model(BOXES), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "new" / "labels" / "a.txt").is_file() and (tmp_path / "new" / "labels" / "classes.txt").is_file()
    assert sorted(p.name for p in (tmp_path / "new" / "images").iterdir()) == ["a.png"]


def test_existing_labels_are_kept_untouched_unless_force(tmp_path, photo_model, make_photo, tools):
    photos = tmp_path / "photos"
    make_photo(photos / "a.png", 60)
    make_photo(photos / "b.png", 61)
    labels = tmp_path / "my_labels"
    labels.mkdir()
    (labels / "a.txt").write_text("2 0.5 0.5 0.1 0.1\n")  # someone's work
    before = tools.snapshot(labels)
    model = photo_model(BOXES)
    proc = prelabel("--images", photos, "--labels", labels, "--weights", model, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert tools.snapshot(labels)["a.txt"] == before["a.txt"]
    assert (labels / "b.txt").is_file() and not (photos / "b.txt").exists()
    assert "1 pre-labelled" in proc.stdout and "1 already labelled and kept" in proc.stdout
    assert read_review_order(tmp_path / "runs" / "exp" / "review.txt") == ["b.png"]

    proc = prelabel("--images", photos, "--labels", labels, "--weights", model, "--force", cwd=tmp_path)
    assert proc.returncode == 0 and "2 pre-labelled" in proc.stdout
    assert rows(labels / "a.txt")[0][0] == 0
    assert (tmp_path / "runs" / "exp2" / "review.txt").is_file()  # a new numbered run folder


def test_unreadable_photos_are_skipped_counted_and_make_the_exit_status_1(tmp_path, photo_model, make_photo):
    photos = tmp_path / "photos"
    make_photo(photos / "a.png", 60)
    (photos / "broken.png").write_bytes(b"\x89PNG not really")
    only_weak = [(16, 12, 48, 60, 0, 0.2)]
    proc = prelabel("--images", photos, "--weights", photo_model(only_weak), "--conf", "0.35", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr  # as detect.py: not all were done
    assert "1 unreadable and skipped" in proc.stdout and "broken.png" in proc.stdout
    assert (photos / "a.txt").read_text() == ""  # reviewed as "no face": an empty label file
    assert "no face found in 1 photos (e.g. a.png)" in proc.stdout
    assert not (photos / "broken.txt").exists()


def test_a_model_with_other_classes_is_refused_in_one_line(tmp_path, photo_model, make_photo, tools):
    make_photo(tmp_path / "photos" / "a.png", 60)
    model = photo_model(BOXES, names=("face", "mask", "other"))
    line = tools.assert_one_line_error(prelabel("--images", tmp_path / "photos", "--weights", model, cwd=tmp_path),
                                       "differ from data.yaml")
    assert "'face'" in line
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["a.png"]


def test_the_least_certain_photo_comes_first_in_the_review_order(tmp_path, make_photo, fixed_detector):
    photos = tmp_path / "photos"
    for shade, name in ((10, "sure.png"), (20, "at_threshold.png"), (30, "near_miss.png"), (40, "empty.png")):
        make_photo(photos / name, shade)
    detector = fixed_detector({
        10: [(10, 10, 40, 40, 0, 0.95)],
        20: [(10, 10, 40, 40, 0, 0.95), (50, 10, 90, 40, 1, 0.36)],  # a box right at the threshold
        30: [(10, 10, 40, 40, 0, 0.9), (50, 10, 90, 40, 2, 0.25)],  # a face just below it, not written
    })
    review = tmp_path / "review.txt"
    report = prelabel_folder(photos, photos, detector, conf=0.35, review_file=review)
    assert read_review_order(review) == ["at_threshold.png", "near_miss.png", "sure.png", "empty.png"]
    lines = review.read_text().splitlines()
    assert lines[2].startswith("at_threshold.png  # doubt 0.98; 2 boxes; closest call without_mask 0.36")
    assert len(report.review) == 4 and report.no_face == ["empty.png"]
    assert len(rows(photos / "near_miss.txt")) == 1  # the 0.25 box is only a hint for the order


def test_an_interrupted_run_keeps_finished_labels_and_their_review_order(tmp_path, make_photo, fixed_detector):
    photos = tmp_path / "photos"
    make_photo(photos / "a.png", 10)
    make_photo(photos / "b.png", 20)
    inner = fixed_detector({10: [(10, 10, 40, 40, 0, 0.5)]})

    def detector(image):
        if image[0, 0, 0] == 20:
            raise KeyboardInterrupt
        return inner(image)

    try:
        report = prelabel_folder(photos, photos, detector, conf=0.35, review_file=tmp_path / "review.txt")
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C went through prelabel_folder: its report, and so the summary, were lost")
    assert report.interrupted and report.exit_status == 130 and (report.photos, report.total, report.written) == (1, 2, 1)
    assert rows(photos / "a.txt")[0][0] == 0 and not (photos / "b.txt").exists()
    assert read_review_order(tmp_path / "review.txt") == ["a.png"]
    assert (tmp_path / "review.txt").read_text().startswith("# review order written")  # sorted: the run's end


def test_ctrl_c_prints_the_summary_with_its_counts_and_exits_130(tmp_path):
    photos = tmp_path / "photos"
    names = sample_photos(photos, 8)
    proc = start_prelabel_and_wait_for_labels(photos, 1, cwd=tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    done = label_files(photos)
    assert 1 <= len(done) < len(names)
    assert f"interrupted after {len(done)} of 8 photos: {len(done)} pre-labelled into {photos}" in out
    assert "0 already labelled and kept, 0 unreadable and skipped" in out and "boxes: " in out
    review = tmp_path / "runs" / "exp" / "review.txt"
    assert f"review order ({len(done)} photos, least sure first): {review}" in out
    assert read_review_order(review) == [f"{Path(n).stem}.jpg" for n in done]


def test_a_killed_run_leaves_the_review_order_of_its_photos_and_the_rerun_reviews_them_again(tmp_path, tools):
    photos = tmp_path / "photos"
    names = sample_photos(photos, 8)
    proc = start_prelabel_and_wait_for_labels(photos, 2, cwd=tmp_path)
    proc.kill()  # kill -9: nothing runs after it
    proc.communicate(timeout=60)
    done = [f"{Path(n).stem}.jpg" for n in label_files(photos)]
    assert 2 <= len(done) < len(names)
    listed = read_review_order(tmp_path / "runs" / "exp" / "review.txt")  # as they were done: a valid order
    assert set(done) <= set(listed) and listed == names[:len(listed)] and len(listed) <= len(done) + 1
    before = tools.snapshot(photos)

    rerun = prelabel("--images", photos, "--weights", ROOT / "models" / "best.onnx", cwd=tmp_path)
    assert rerun.returncode == 0 and "Traceback" not in rerun.stderr, rerun.stderr
    assert (f"8 photos: {8 - len(done)} pre-labelled into {photos}, {len(done)} pre-labelled by an earlier run and "
            "unchanged (reviewed again), 0 already labelled and kept") in rerun.stdout
    assert sorted(read_review_order(tmp_path / "runs" / "exp2" / "review.txt")) == names  # none left out
    assert all(tools.snapshot(photos)[f"{Path(n).stem}.txt"] == before[f"{Path(n).stem}.txt"] for n in done)


def test_a_persons_edit_of_a_prelabel_is_kept_and_the_untouched_prelabels_are_reviewed_again(tmp_path, photo_model,
                                                                                              make_photo, tools):
    photos = tmp_path / "photos"
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        make_photo(photos / name, 60 + i)
    model = photo_model(BOXES)
    assert prelabel("--images", photos, "--weights", model, cwd=tmp_path).returncode == 0
    (photos / "a.txt").write_text("0 0.2 0.3 0.2 0.4\n")  # a person deleted a box of a's pre-label
    before = tools.snapshot(photos)

    for run in ("exp2", "exp3"):  # a run that reviews b and c again records them for the next one too
        proc = prelabel("--images", photos, "--weights", model, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert ("3 photos: 0 pre-labelled into" in proc.stdout and "2 pre-labelled by an earlier run and unchanged"
                in proc.stdout and "1 already labelled and kept" in proc.stdout)
        assert f"kept existing labels (someone's work; --force replaces them): e.g. {photos / 'a.txt'}" in proc.stdout
        assert read_review_order(tmp_path / "runs" / run / "review.txt") == ["b.png", "c.png"]
        assert tools.snapshot(photos) == before  # nothing rewritten, the person's a.txt least of all


def test_images_naming_a_file_says_it_is_a_file_not_a_folder(tmp_path, make_photo, tools):
    photo = make_photo(tmp_path / "a.jpg", 60)
    line = tools.assert_one_line_error(prelabel("--images", photo, cwd=tmp_path), str(photo), "is a file, not a folder")
    assert "not found" not in line


def test_photos_whose_label_files_clash_are_skipped_as_a_name_clash_not_as_unreadable(tmp_path, photo_model, make_photo):
    photos = tmp_path / "photos"
    for name in ("a.png", "x.jpg", "x.png"):
        make_photo(photos / name, 60)
    proc = prelabel("--images", photos, "--weights", photo_model(BOXES), cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr  # a photo was left out
    assert "3 photos: 2 pre-labelled" in proc.stdout
    assert "0 unreadable and skipped, 1 skipped for a name clash (same label file as another photo)" in proc.stdout
    assert f"{photos / 'x.png'}: same name as x.jpg, so the same label file x.txt" in proc.stdout
    assert read_review_order(tmp_path / "runs" / "exp" / "review.txt") == ["a.png", "x.jpg"]


def test_a_labels_folder_whose_classes_txt_gives_used_ids_other_classes_is_refused(tmp_path, photo_model, make_photo, tools):
    photos = tmp_path / "photos"
    make_photo(photos / "a.png", 60)
    make_photo(photos / "b.png", 61)
    (photos / "classes.txt").write_text("without_mask\nwith_mask\nmask_weared_incorrect\n")
    (photos / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    tools.assert_one_line_error(prelabel("--images", photos, "--weights", photo_model(BOXES), cwd=tmp_path),
                                "classes.txt", "a.txt:1", "pre-label again")
    assert not (photos / "b.txt").exists()


def test_a_classes_txt_that_disagrees_is_kept_unless_forced_even_when_no_label_uses_it(tmp_path, photo_model, make_photo,
                                                                                         tools):
    photos = tmp_path / "photos"
    make_photo(photos / "a.png", 60)
    (photos / "classes.txt").write_text("dog\ncat\n")
    refused = prelabel("--images", photos, "--weights", photo_model(BOXES), cwd=tmp_path)
    tools.assert_one_line_error(refused, "classes.txt", "--force")
    assert "rewritten" not in refused.stdout  # no note that says the opposite of the error
    assert (photos / "classes.txt").read_text() == "dog\ncat\n" and not (photos / "a.txt").exists()
    proc = prelabel("--images", photos, "--weights", photo_model(BOXES), "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (photos / "classes.txt").read_text().split() == NAMES


def test_a_folder_without_photos_is_one_line_and_nothing_is_written(tmp_path, photo_model, tools):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "notes.txt").write_text("no photos here\n")
    tools.assert_one_line_error(prelabel("--images", photos, "--weights", photo_model(BOXES), cwd=tmp_path),
                                "no photos in this folder")
    assert sorted(p.name for p in photos.iterdir()) == ["notes.txt"] and not (tmp_path / "runs").exists()


def test_a_run_folder_that_cannot_be_made_leaves_the_photos_folder_untouched(tmp_path, photo_model, make_photo, tools):
    photos = tmp_path / "photos"
    make_photo(photos / "a.png", 60)
    (tmp_path / "runs").write_text("a file where the run folders would go\n")
    tools.assert_one_line_error(prelabel("--images", photos, "--weights", photo_model(BOXES), cwd=tmp_path),
                                "Not a directory")
    assert sorted(p.name for p in photos.iterdir()) == ["a.png"]


def test_a_photo_over_the_pixel_limit_is_skipped_and_the_rest_prelabelled(tmp_path, fixed_detector, make_photo):
    photos = tmp_path / "photos"
    make_photo(photos / "a.png", 60)
    huge_png(photos / "b.png", 20000, 20000)
    echoed: list[str] = []
    report = prelabel_folder(photos, photos, fixed_detector({}), conf=0.35, echo=echoed.append)
    assert report.written == 1 and len(report.skipped) == 1 and "over the limit of 100 megapixels" in report.skipped[0]
    assert "downscale it" in report.skipped[0] and "--max-pixels" not in report.skipped[0]  # prelabel.py has no such flag
    assert (photos / "a.txt").exists() and not (photos / "b.txt").exists()


def test_tiles_prelabel_the_small_faces_of_a_large_photo_each_once(tmp_path):
    import cv2
    from synthetic import boxes_on_each_face, small_face_scene

    frame, truth = small_face_scene()  # 12 faces about 22 px high in 1920x1080: too small for the whole photo
    counts = {}
    for tile in ("0", "480"):
        photos = tmp_path / f"tile{tile}"
        photos.mkdir()
        assert cv2.imwrite(str(photos / "crowd.png"), frame)
        proc = prelabel("--images", photos, "--weights", ROOT / "models" / "best.onnx", "--tile", tile, cwd=tmp_path)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        label = photos / "crowd.txt"
        boxes = [[(x - w / 2) * 1920, (y - h / 2) * 1080, (x + w / 2) * 1920, (y + h / 2) * 1080]
                 for _, x, y, w, h in rows(label)] if label.exists() else []
        counts[tile] = boxes_on_each_face(boxes, truth)
    assert sum(n > 0 for n in counts["0"]) <= 2
    assert counts["480"] == [1] * len(truth)


def test_a_tile_out_of_range_is_refused_in_one_line(tmp_path, make_photo, tools):
    make_photo(tmp_path / "photos" / "a.png", 60)
    proc = prelabel("--images", tmp_path / "photos", "--tile", "10", cwd=tmp_path)
    tools.assert_one_line_error(proc, "--tile must be 0 (off) or 64..8192 px")
    assert not (tmp_path / "photos" / "a.txt").exists()
