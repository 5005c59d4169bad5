"""Bad input never ends in a traceback: a bad entry among good ones is skipped with a message naming
it and the rest is processed (exit 0); when nothing at all can be read, one clear `error:` line on stderr
(not OpenCV's or FFmpeg's own diagnostics) and exit 2."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_an_unreadable_image_in_a_folder_is_skipped_and_the_rest_processed(detect, model, make_images, tmp_path):
    make_images(tmp_path / "in", n=2)
    broken = tmp_path / "in" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    proc = ok(detect("--source", tmp_path / "in", "--weights", model.onnx))
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 1 and str(broken) in skipped[0], proc.stderr
    assert "2 frames from 3 inputs" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "runs" / "exp").iterdir()) == ["scene0.png", "scene1.png"]


def test_a_single_unreadable_image_is_a_one_line_error(detect, model, tmp_path, tools):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    tools.assert_one_line_error(detect("--source", broken, "--weights", model.onnx), broken)


@pytest.mark.parametrize("suffix", [".avi", ".ts"])
def test_a_truncated_video_is_processed_as_far_as_it_goes(suffix, detect, model, make_video, tmp_path, kit):
    source = make_video(tmp_path / "full.avi", frames=30)
    if suffix == ".ts":
        if shutil.which("ffmpeg") is None:
            pytest.skip("ffmpeg not installed")
        ts = tmp_path / "full.ts"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(source), "-c:v", "mpeg2video",
                        "-q:v", "4", "-f", "mpegts", str(ts)], check=True, timeout=60)
        source = ts
    data = source.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])

    proc = ok(detect("--source", cut, "--weights", model.onnx, "--conf", kit.low_conf, "--save-csv"))
    done = int(proc.stdout.split(" frames from 1 inputs")[0].rsplit("\n", 1)[-1])
    assert 5 <= done < 30, proc.stdout[-500:]
    if suffix == ".avi":  # AVI knows its length, so detect.py can tell it was cut short
        assert f"note: {cut}: ended after {done} of 30 frames" in proc.stderr
    assert kit.count_video_frames(tmp_path / "runs" / "exp" / "cut.mp4") == done


def test_an_mp4_cut_before_its_index_is_a_clear_error(detect, model, make_video, tmp_path, tools):
    full = make_video(tmp_path / "full.mp4", frames=30)  # OpenCV writes the moov index at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[:20000])
    line = tools.assert_one_line_error(detect("--source", cut, "--weights", model.onnx), cut)
    assert "cannot open this video" in line


def test_an_empty_folder_is_a_one_line_error(detect, model, tmp_path, tools):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = tools.assert_one_line_error(detect("--source", empty, "--weights", model.onnx), empty)
    assert "no images or videos" in line
    assert not (tmp_path / "runs").exists(), "no run folder for a run that never started"


def test_a_path_that_does_not_exist_is_a_one_line_error_naming_it(detect, model, tmp_path, tools):
    missing = tmp_path / "holiday" / "beach.jpg"
    line = tools.assert_one_line_error(detect("--source", missing, "--weights", model.onnx), missing)
    assert "no such file" in line


def test_missing_weights_are_a_one_line_error_naming_them(detect, make_images, tmp_path, tools):
    image = make_images(tmp_path / "in", n=1)[0]
    tools.assert_one_line_error(detect("--source", image, "--weights", tmp_path / "nope.onnx"), "nope.onnx")


def test_a_url_nobody_serves_fails_quickly_with_a_clear_error(detect, model, kit, tools):
    url = f"http://127.0.0.1:{kit.free_port()}/x"
    started = time.monotonic()
    proc = detect("--source", url, "--weights", model.onnx, timeout=60)
    took = time.monotonic() - started
    line = tools.assert_one_line_error(proc, f"cannot open stream {url}")
    assert "server is up" in line
    assert took < 20, took


def test_a_webcam_that_cannot_be_opened_suggests_another_index(detect, model, tools):
    line = tools.assert_one_line_error(detect("--source", "7", "--weights", model.onnx, timeout=60), "cannot open webcam 7")
    assert "another index" in line and "--source 1" in line


def test_a_bad_line_in_a_txt_list_is_reported_with_file_and_line(detect, model, make_images, tmp_path, kit):
    good = make_images(tmp_path / "in", n=1)[0]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'gone.jpg'}\n{good}\n")
    proc = ok(detect("--source", listing, "--weights", model.onnx, "--conf", kit.low_conf, "--save-csv"))
    assert f"{listing}:1: nothing to read at" in proc.stderr and "gone.jpg" in proc.stderr
    assert "1 frames from 1 inputs" in proc.stdout
    rows = kit.read_csv_rows(tmp_path / "runs" / "exp" / "predictions.csv")[1]
    assert rows and {r["source"] for r in rows} == {str(good)}


def test_show_without_a_screen_is_a_one_line_error_not_a_crash(detect, model, make_images, tmp_path, tools, monkeypatch):
    """OpenCV's Qt window would abort the process (exit 134, outputs cut off) with no X display."""
    image = make_images(tmp_path / "in", n=1)[0]
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    line = tools.assert_one_line_error(detect("--source", image, "--weights", model.onnx, "--show"), "--show")
    assert "DISPLAY" in line
    assert not (tmp_path / "runs").exists()


def test_an_imgsz_a_fixed_size_onnx_cannot_take_is_a_one_line_error(detect, model, make_images, tmp_path, tools):
    image = make_images(tmp_path / "in", n=1)[0]
    line = tools.assert_one_line_error(detect("--source", image, "--weights", model.onnx, "--imgsz", "320"), model.onnx)
    assert "export.py --imgsz 320" in line
