"""What detect.py refuses before it works, and what it bounds while it works: every number in range, a model
that is not a detector, images over the pixel limit (measured from the header, before decoding), and inputs
reached twice (symlink loops, a list that includes itself) read once."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from synthetic import NAMES, _constant_onnx, huge_png

from maskdet.cli import detect as detect_cli
from maskdet.errors import UserError
from maskdet.inference.detectors import DetectSettings, load_detector
from maskdet.inference.sources import SourceError, read_image


@pytest.mark.parametrize("args", [["--conf", "2"], ["--conf", "-1"], ["--iou", "5"], ["--max-det", "0"], ["--imgsz", "0"],
                                  ["--vid-stride", "0"], ["--stream-timeout", "-1"], ["--max-pixels", "0"],
                                  ["--conf", "nan"], ["--min-frames", "0"], ["--alert-after", "-2"],
                                  ["--line-thickness", "0"], ["--classes", "-1"]])
def test_every_number_is_range_checked_before_anything_runs(args, capsys):
    with pytest.raises(SystemExit) as stop:
        detect_cli.main([*args, "--source", "nothing-here.jpg"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {args[0]}" in err and "must be" in err and args[1] in err, err


@pytest.mark.parametrize("index", ["10000", "99999999999", "9" * 5000])
def test_a_webcam_index_is_range_checked_in_one_line(index, detect, scripted_model, tools):
    line = tools.assert_one_line_error(detect("--source", index, "--weights", scripted_model([]), timeout=60))
    assert "out of range for a webcam index, which is 0 to 9999" in line or len(index) > 1000, line  # printable() cuts


def test_a_webcam_index_out_of_range_in_a_list_is_skipped_with_its_line(detect, scripted_model, make_images, tmp_path):
    photo = make_images(tmp_path / "in", n=1)[0]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{photo}\n99999999999\n")
    proc = detect("--source", listing, "--weights", scripted_model([]))
    assert proc.returncode == 1, proc.stderr
    assert f"{listing}:2: nothing to read at '99999999999'" in proc.stderr and "0 to 9999" in proc.stderr, proc.stderr
    assert "1 frames from 2 inputs" in proc.stdout, proc.stdout


@pytest.mark.parametrize("digits", ["\u00b2", "\u0663", "\uff11"])  # superscript two, Arabic-Indic three, fullwidth one
def test_digits_that_are_not_ascii_are_no_webcam_index_and_no_crash(digits, detect, scripted_model, tools):
    line = tools.assert_one_line_error(detect("--source", digits, "--weights", scripted_model([]), timeout=60), digits)
    assert "no such file or folder" in line


def test_an_image_over_the_pixel_limit_is_skipped_counted_and_the_rest_processed(detect, scripted_model, make_images,
                                                                                   tmp_path):
    make_images(tmp_path / "in", n=2)
    huge = huge_png(tmp_path / "in" / "huge.png", 20000, 20000)  # 400 megapixels
    proc = detect("--source", tmp_path / "in", "--weights", scripted_model([]))
    assert proc.returncode == 1, proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 1 and str(huge) in skipped[0] and "--max-pixels" in skipped[0], proc.stderr
    assert "400 megapixels" in skipped[0]
    assert "2 frames from 3 inputs" in proc.stdout and "problems: 1 of 3 inputs" in proc.stdout
    assert not (tmp_path / "runs" / "exp" / "huge.png").exists()


def test_max_pixels_sets_the_limit(detect, scripted_model, make_images, tmp_path):
    make_images(tmp_path / "in", n=1, size=(160, 120))  # 19,200 pixels
    make_images(tmp_path / "in2", n=1, size=(100, 100))  # 10,000 pixels
    proc = detect("--source", tmp_path / "in", "--weights", scripted_model([]), "--max-pixels", "15000")
    assert proc.returncode == 2 and "160x120 pixels is over the limit" in proc.stderr, proc.stderr
    assert detect("--source", tmp_path / "in2", "--weights", scripted_model([]), "--max-pixels", "15000").returncode == 0


def test_a_file_that_cannot_be_opened_is_a_source_error_not_a_crash(tmp_path):
    folder_named_like_an_image = tmp_path / "photo.jpg"
    folder_named_like_an_image.mkdir()
    with pytest.raises(SourceError, match="cannot read this file"):
        read_image(folder_named_like_an_image)


def test_an_image_opencv_refuses_to_decode_is_a_source_error(tmp_path):
    # Over OpenCV's own ceiling (2^30 pixels) cv2.imdecode raises instead of returning None.
    huge = huge_png(tmp_path / "huge.png", 40000, 30000)
    with pytest.raises(SourceError, match="huge.png"):
        read_image(huge, max_pixels=1 << 31)


@pytest.mark.parametrize("out, meta, why", [
    (np.zeros((1, 3), np.float32), {"task": "classify"}, "'classify' model, not a detector"),
    (np.zeros((1, 3), np.float32), {}, "not a detection model for its 3 classes"),
    (np.zeros((1, 4 + 80, 10), np.float32), {}, "not a detection model for its 3 classes"),
])
def test_a_model_that_is_not_a_detector_for_its_classes_is_refused_when_loaded(out, meta, why, tmp_path):
    path = _constant_onnx(tmp_path / "other.onnx", out, 64, NAMES, meta)
    with pytest.raises(UserError, match=why):
        load_detector(path, DetectSettings())


def test_detect_refuses_a_classifier_in_one_line(detect, make_images, tmp_path, tools):
    image = make_images(tmp_path / "in", n=1)[0]
    classifier = _constant_onnx(tmp_path / "cls.onnx", np.zeros((1, 3), np.float32), 64, NAMES, {"task": "classify"})
    tools.assert_one_line_error(detect("--source", image, "--weights", classifier), "not a detector")


def test_half_with_an_onnx_model_is_refused_not_ignored(scripted_model):
    with pytest.raises(UserError, match="--half is for .pt"):
        load_detector(scripted_model([]), DetectSettings(), half=True)


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="this machine has CUDA")
def test_a_gpu_device_without_a_gpu_is_refused_not_ignored(scripted_model):
    with pytest.raises(UserError, match="--device 0: ONNX Runtime here has no CUDA"):
        load_detector(scripted_model([]), DetectSettings(), device="0")


def test_a_glob_through_a_symlink_loop_reads_each_photo_once(detect, scripted_model, make_images, tmp_path):
    make_images(tmp_path / "in", n=1)
    (tmp_path / "in" / "loop").symlink_to(tmp_path / "in", target_is_directory=True)
    proc = detect("--source", f"{tmp_path}/in/**/*.png", "--weights", scripted_model([]))
    assert proc.returncode == 0, proc.stderr
    assert "1 frames from 1 inputs" in proc.stdout, proc.stdout
    assert "read once" in proc.stderr


def test_a_list_that_includes_itself_reads_every_entry_once(detect, scripted_model, make_images, tmp_path):
    photo = make_images(tmp_path / "in", n=1)[0]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{photo}\nlist.txt\n")
    proc = detect("--source", listing, "--weights", scripted_model([]))
    assert "1 frames from" in proc.stdout, proc.stdout + proc.stderr
    assert "includes itself" in proc.stderr


def test_a_relative_entry_of_a_list_is_read_from_the_lists_folder_and_the_error_says_so(detect, scripted_model,
                                                                                          make_images, tmp_path):
    make_images(tmp_path / "lists" / "in", n=1)
    listing = tmp_path / "lists" / "list.txt"
    listing.write_text("in/scene0.png\nscene0.png\n")  # the first is beside the list; the second is not
    proc = detect("--source", listing, "--weights", scripted_model([]))
    assert proc.returncode == 1 and "1 frames from 2 inputs" in proc.stdout, proc.stdout + proc.stderr
    line = next(line for line in proc.stderr.splitlines() if f"{listing}:2" in line)
    assert str(tmp_path / "lists" / "scene0.png") in line and "read from the list's folder" in line
    assert "list's own folder" in " ".join(detect_cli.EXAMPLES.split())


def test_two_inputs_with_the_same_name_from_different_folders_both_keep_their_results(detect, scripted_model,
                                                                                        make_images, tmp_path):
    first = make_images(tmp_path / "a", n=1)[0]
    second = make_images(tmp_path / "b", n=1, size=(200, 100))[0]  # the same name, scene0.png: another photo
    listing = tmp_path / "list.txt"
    listing.write_text(f"{first}\n{second}\n")
    proc = detect("--source", listing, "--weights", scripted_model([(10, 10, 50, 50, 0, 0.9)]), "--save-txt")
    assert proc.returncode == 0, proc.stderr
    assert f"{second} as scene0_2" in proc.stderr
    out = tmp_path / "runs" / "exp"
    assert sorted(p.name for p in out.glob("*.png")) == ["scene0.png", "scene0_2.png"]
    assert sorted(p.name for p in (out / "labels").glob("scene*.txt")) == ["scene0.txt", "scene0_2.txt"]
    import cv2

    assert cv2.imread(str(out / "scene0_2.png")).shape[:2] == (100, 200)


def test_inputs_with_the_same_name_get_no_note_about_saved_names_when_nothing_is_saved(detect, scripted_model,
                                                                                        make_images, tmp_path):
    first = make_images(tmp_path / "a", n=1)[0]
    second = make_images(tmp_path / "b", n=1)[0]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{first}\n{second}\n")
    weights = scripted_model([(10, 10, 50, 50, 0, 0.9)])
    proc = detect("--source", listing, "--weights", weights, "--nosave")
    assert proc.returncode == 0 and "2 frames from 2 inputs" in proc.stdout, proc.stdout + proc.stderr
    assert "numbered name" not in proc.stderr and not list((tmp_path / "runs").rglob("*.png"))
    proc = detect("--source", listing, "--weights", weights, "--nosave", "--save-txt")  # label files are named
    assert proc.returncode == 0 and f"{second} as scene0_2" in proc.stderr, proc.stderr


def test_an_image_over_the_limit_names_the_flag_only_for_a_caller_that_has_it(tmp_path):
    """detect.py has --max-pixels; prelabel.py, export.py's calibration and check.py's previews do not: their
    message says to downscale the photo, not to raise a flag they lack."""
    huge = huge_png(tmp_path / "huge.png", 20000, 20000)
    with pytest.raises(SourceError) as without_flag:
        read_image(huge)
    assert str(without_flag.value).endswith("(this one has 400 megapixels): downscale it")
    assert "--max-pixels" not in str(without_flag.value)
    with pytest.raises(SourceError, match=r"\(--max-pixels; this one has 400 megapixels\): downscale it or raise "
                                          "--max-pixels$"):
        read_image(huge, limit_flag="--max-pixels")
