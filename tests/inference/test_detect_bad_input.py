"""Bad input never ends in a traceback: a bad entry among good ones is skipped with a message naming
it, in its place among the frame lines, and the rest is processed (exit 1: done, but not everything);
when nothing at all can be read, one clear `error:` line on stderr (not OpenCV's, FFmpeg's or libpng's own
diagnostics), exit 2, and no run folder left behind."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from synthetic import h264_video


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_an_unreadable_image_in_a_folder_is_skipped_counted_and_the_rest_processed(detect, model, make_images, tmp_path):
    make_images(tmp_path / "in", n=2)
    broken = tmp_path / "in" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    proc = detect("--source", tmp_path / "in", "--weights", model.onnx)
    assert proc.returncode == 1, proc.stderr  # done, but not with every input
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 1 and str(broken) in skipped[0], proc.stderr
    assert "2 frames from 3 inputs" in proc.stdout
    assert "problems: 1 of 3 inputs skipped" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "runs" / "exp").iterdir()) == ["scene0.png", "scene1.png"]


def test_a_file_too_big_to_be_any_image_is_skipped_from_its_size_without_being_read(detect, model, make_images,
                                                                                  tmp_path, tools):
    """A terabyte named like a photo (a disk image, a video renamed) would take all the memory if read whole."""
    make_images(tmp_path / "in", n=1)
    huge = tools.sparse_file(tmp_path / "in" / "huge.jpg", 1 << 40)
    proc = detect("--source", tmp_path / "in", "--weights", model.onnx)
    assert proc.returncode == 1, proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 1 and str(huge) in skipped[0] and "1,099,511,627,776 bytes, over the" in skipped[0], proc.stderr
    assert "problems: 1 of 2 inputs skipped" in proc.stdout


def test_a_source_list_too_big_to_be_one_is_skipped_unread(detect, model, make_images, tmp_path, tools):
    good = make_images(tmp_path / "in", n=1)[0]
    huge = tools.sparse_file(tmp_path / "more.txt", 1 << 40)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{huge}\n{good}\n")
    proc = detect("--source", listing, "--weights", model.onnx)
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped: ")]
    assert skipped == [f"skipped: {listing}:1: nothing to read at '{huge}' (cannot read this list (1,099,511,627,776 "
                       "bytes, over the 16,777,216-byte limit for a file of this kind))"], proc.stderr
    assert "1 frames from 2 inputs" in proc.stdout and "problems: 1 of 2 inputs skipped" in proc.stdout, proc.stdout


@pytest.mark.parametrize("codec", ["h264", "mp4v"])
def test_a_video_whose_frames_are_over_max_pixels_is_refused_not_processed(codec, detect, model, make_video,
                                                                           make_images, tmp_path, tools):
    """OpenCV decodes whatever size a video holds (a 105 KB file of 8192x4320 frames took 774 MB): the size is
    read from the container first (H.264, and MPEG-4 Part 2: OpenCV's own mp4v). 160x120 frames against a
    0.01 MP limit stand in for huge ones here."""
    why = "160x120 pixels a frame, over the 0.01 megapixel limit"
    clip = tmp_path / "in" / "clip.mp4"
    video = h264_video(clip) if codec == "h264" else make_video(clip, frames=10)
    tools.assert_one_line_error(detect("--source", video, "--weights", model.onnx, "--max-pixels", "10000"), video, why)
    make_images(tmp_path / "in", n=1, size=(80, 60))  # within the limit
    proc = detect("--source", tmp_path / "in", "--weights", model.onnx, "--max-pixels", "10000")
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped: ")]
    assert proc.returncode == 1 and len(skipped) == 1 and str(video) in skipped[0] and why in skipped[0], proc.stderr


def test_a_video_whose_frames_grow_midway_stops_there_undecoded_and_keeps_what_came_before(detect, model, kit,
                                                                                              tmp_path):
    """A stream may change its frame size at any keyframe. OpenCV would rescale the big frames to the first
    one's size (so no check on its output sees them) after FFmpeg had decoded them at full size; the
    decoder itself now refuses them. 10 frames of 160x120 then 3 of 320x240, against a 0.03 MP limit."""
    first, then = h264_video(tmp_path / "a.ts", 10), h264_video(tmp_path / "b.ts", 3, size=(320, 240))
    grows = tmp_path / "grows.ts"
    grows.write_bytes(first.read_bytes() + then.read_bytes())  # MPEG-TS segments join by concatenation
    proc = detect("--source", grows, "--weights", model.onnx, "--max-pixels", "30000")
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # done, but not to the input's end
    assert f"stopped early: 1/1 {grows}: frame 10 is 320x240 pixels, over the 0.03 megapixel limit" in proc.stderr
    assert "10 frames from 1 inputs" in proc.stdout and "problems: 1 of 1 inputs skipped or stopped early" in proc.stdout
    assert kit.count_video_frames(tmp_path / "runs" / "exp" / "grows.mp4") == 10  # the annotated video so far
def test_file_names_with_terminal_escapes_are_printed_escaped_in_frame_and_skip_lines(detect, model, make_images,
                                                                                         tmp_path):
    """A file name is outside input: ESC in it would reach the terminal as an escape sequence (clear the screen,
    retitle the window). Frame, skip and summary lines write it as \\x1b instead."""
    make_images(tmp_path / "in", n=1)
    (tmp_path / "in" / "scene0.png").rename(tmp_path / "in" / "clear\x1b[2J.png")
    (tmp_path / "in" / "title\x1b]0;owned\x07.jpg").write_bytes(b"not an image")
    proc = detect("--source", tmp_path / "in", "--weights", model.onnx)
    assert proc.returncode == 1, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stdout + proc.stderr
    assert r"clear\x1b[2J.png: " in proc.stdout
    assert str(tmp_path / "in") + r"/title\x1b]0;owned\x07.jpg: cannot read this image" in proc.stderr


def test_skip_lines_come_in_order_among_the_frame_lines_with_their_number(detect, model, make_images, tmp_path):
    make_images(tmp_path / "in", n=4)  # scene0..scene3.png
    for name in ("scene1.png", "scene2.png"):
        (tmp_path / "in" / name).write_bytes(b"not an image at all")
    proc = detect("--source", tmp_path / "in", "--weights", model.onnx, merge_output=True)
    assert proc.returncode == 1, proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("image ", "skipped: "))]
    assert [line.split(":")[0] if line.startswith("image") else line.split(" ")[1] for line in lines] == [
        f"image 1/4 {tmp_path / 'in' / 'scene0.png'}", "2/4", "3/4", f"image 4/4 {tmp_path / 'in' / 'scene3.png'}"]
    assert "2 frames from 4 inputs" in proc.stdout and "problems: 2 of 4 inputs" in proc.stdout


def test_a_folder_where_no_image_can_be_read_is_an_error_and_leaves_no_run_folder(detect, model, tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.jpg"):
        (tmp_path / "in" / name).write_bytes(b"junk")
    proc = detect("--source", tmp_path / "in", "--weights", model.onnx)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: none of the 2 inputs could be read")
    assert not (tmp_path / "runs" / "exp").exists()


def test_an_empty_source_is_an_error_not_the_current_folder(detect, model, make_images, tmp_path, tools):
    make_images(tmp_path, n=2)  # detect() runs in tmp_path: photos an empty --source must not pick up
    line = tools.assert_one_line_error(detect("--source", "", "--weights", model.onnx), "--source is empty")
    assert "webcam" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("make_bad", ["unreadable image", "empty video", "absent webcam"])
def test_a_run_that_fails_before_its_first_frame_leaves_no_run_folder(make_bad, detect, model, make_images, tmp_path):
    make_images(tmp_path / "good", n=1)
    ok(detect("--source", tmp_path / "good", "--weights", model.onnx))  # runs/exp
    bad = {"unreadable image": tmp_path / "bad.png", "empty video": tmp_path / "empty.mp4"}.get(make_bad, "7")
    if make_bad != "absent webcam":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n cut" if make_bad == "unreadable image" else b"")
    proc = detect("--source", bad, "--weights", model.onnx, "--save-csv", "--save-json", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["exp"]
    ok(detect("--source", tmp_path / "good", "--weights", model.onnx))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["exp", "exp2"]  # the numbering did not move


def test_a_damaged_png_is_reported_once_in_our_words_not_libpng_s(detect, model, make_images, tmp_path, tools):
    good = make_images(tmp_path / "in", n=1)[0]
    damaged = tmp_path / "damaged.png"
    data = bytearray(good.read_bytes())
    data[40:48] = b"\x00" * 8  # inside IHDR/IDAT: the chunk CRC no longer matches
    damaged.write_bytes(bytes(data))
    line = tools.assert_one_line_error(detect("--source", damaged, "--weights", model.onnx), damaged)
    assert "libpng" not in line and "damaged or truncated PNG" in line


def test_a_png_whose_text_chunk_is_damaged_is_detected_as_viewers_show_it_without_libpngs_warning(
        detect, model, make_images, tmp_path):
    """Only a text chunk's checksum is wrong (a tagging tool's slip): libpng skips the chunk, and so does detect.py."""
    import struct

    good = make_images(tmp_path / "in", n=1)[0]
    data = good.read_bytes()
    text = struct.pack(">I", 5) + b"tEXtab\x00cd" + b"\x00\x00\x00\x00"  # a wrong CRC
    tagged = tmp_path / "tagged" / "tagged.png"
    tagged.parent.mkdir()
    tagged.write_bytes(data[:33] + text + data[33:])
    proc = detect("--source", tagged, "--weights", model.onnx, "--save-csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "libpng" not in proc.stderr and "damaged" not in proc.stdout + proc.stderr
    assert (tmp_path / "runs" / "exp" / "tagged.png").is_file()


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

    proc = detect("--source", cut, "--weights", model.onnx, "--conf", kit.low_conf, "--save-csv")
    done = int(proc.stdout.split(" frames from 1 inputs")[0].rsplit("\n", 1)[-1])
    assert 5 <= done < 30, proc.stdout[-500:]
    if suffix == ".avi":  # AVI knows its length, so detect.py can tell it was cut short: not read to its end, exit 1
        assert proc.returncode == 1, proc.stderr
        assert f"stopped early: 1/1 {cut}: ended after {done} of 30 frames" in proc.stderr
        assert "problems: 1 of 1 inputs skipped or stopped early" in proc.stdout
    else:
        ok(proc)
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
    proc = detect("--source", listing, "--weights", model.onnx, "--conf", kit.low_conf, "--save-csv")
    assert proc.returncode == 1, proc.stderr
    assert f"{listing}:1: nothing to read at" in proc.stderr and "gone.jpg" in proc.stderr
    assert "1 frames from 2 inputs" in proc.stdout and "problems: 1 of 2 inputs" in proc.stdout
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
    # The simpler path first: the .pt beside it takes any size; re-exporting is the second choice.
    assert line.index(f"--weights {model.pt} --imgsz 320") < line.index("export.py --imgsz 320"), line


def test_an_empty_image_or_video_is_said_to_be_empty(detect, scripted_model, make_images, tmp_path):
    """As the server says it of an empty upload: not 'not a JPEG, PNG, ...' nor 'corrupt'."""
    make_images(tmp_path / "in", n=1)
    for name in ("empty.png", "empty.mp4"):
        (tmp_path / "in" / name).write_bytes(b"")
    proc = detect("--source", tmp_path / "in", "--weights", scripted_model([]))
    assert proc.returncode == 1, proc.stderr
    skipped = sorted(line for line in proc.stderr.splitlines() if line.startswith("skipped: "))
    assert len(skipped) == 2, proc.stderr
    assert skipped[0].endswith("empty.mp4: cannot read this video: the file is empty"), skipped
    assert skipped[1].endswith("empty.png: cannot read this image: the file is empty"), skipped
