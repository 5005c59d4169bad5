"""Video files: an annotated .mp4 with every frame (or every n-th), records with frame numbers and
times, and Ctrl-C or `kill` mid-video leaving complete, readable outputs."""

from __future__ import annotations

import json
import re
import signal

import cv2
import pandas as pd
import pytest


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_video):
    """30 frames, 160x120, 25 fps, mp4v."""
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames=30, fps=25.0)


def test_a_video_gives_an_annotated_mp4_with_every_frame(detect, model, clip, tmp_path, kit):
    proc = ok(detect("--source", clip, "--weights", model.onnx, "--conf", kit.low_conf, "--save-csv"))
    out = tmp_path / "runs" / "exp" / "clip.mp4"
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened()
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (160, 120)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    cap.release()
    assert kit.count_video_frames(out) == 30
    assert "(frame 1/30)" in proc.stdout and "(frame 30/30)" in proc.stdout
    assert "30 frames from 1 inputs" in proc.stdout

    rows = pd.read_csv(tmp_path / "runs" / "exp" / "predictions.csv")
    assert list(rows.columns) == kit.record_fields
    frames = sorted(rows["frame"].unique())
    assert frames == list(range(30)), "at --conf 0.0001 every frame has detections"
    for frame, times in rows.groupby("frame")["timestamp"]:
        assert list(times) == pytest.approx([frame / 25.0] * len(times), abs=1e-3), frame


def test_vid_stride_detects_on_every_nth_frame(detect, model, clip, tmp_path, kit):
    proc = ok(detect("--source", clip, "--weights", model.onnx, "--conf", kit.low_conf, "--save-csv", "--vid-stride", "3"))
    out = tmp_path / "runs" / "exp" / "clip.mp4"
    assert kit.count_video_frames(out) == 10
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0 / 3, abs=0.01), "a third of the frames, so a third of the rate: real speed"
    cap.release()
    assert "10 frames from 1 inputs" in proc.stdout
    rows = pd.read_csv(tmp_path / "runs" / "exp" / "predictions.csv")
    assert sorted(rows["frame"].unique()) == list(range(0, 30, 3))
    assert sorted(rows["timestamp"].unique()) == pytest.approx([f / 25.0 for f in range(0, 30, 3)], abs=1e-3)


def test_vid_stride_below_one_is_refused(detect, model, clip, tools):
    tools.assert_one_line_error(detect("--source", clip, "--weights", model.onnx, "--vid-stride", "0"), "--vid-stride")


def test_save_txt_on_a_video_writes_a_label_file_per_frame(detect, model, clip, tmp_path, kit):
    ok(detect("--source", clip, "--weights", model.onnx, "--conf", kit.low_conf, "--save-txt", "--nosave", "--vid-stride", "10"))
    labels = sorted(p.name for p in (tmp_path / "runs" / "exp" / "labels").iterdir())
    assert labels == ["classes.txt", "clip_0.txt", "clip_10.txt", "clip_20.txt"]


# --- stopping mid-video ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory, make_video):
    """600 frames (24 s at 25 fps): with the 640 px model this takes far longer than the test waits."""
    return make_video(tmp_path_factory.mktemp("video") / "long.mp4", frames=600, fps=25.0)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_mid_video_leaves_complete_outputs(sig, detect, background, slow_model, long_clip, tmp_path, kit):
    argv = detect.argv("--source", long_clip, "--weights", slow_model, "--conf", kit.low_conf, "--save-csv", "--save-json")
    proc = background(argv, "detect")
    run_dir = tmp_path / "runs" / "exp"

    kit.wait_for(lambda: proc.stdout.count("video 1/1 (frame ") >= 5 or not proc.running(), 90,
                 message="5 frames to be processed")
    assert proc.running(), f"detect ended before it could be interrupted: {proc.stderr[-2000:]}"

    proc.signal(sig)
    assert proc.wait(timeout=30) == 130
    kit.assert_clean_stderr(proc.stderr)
    summary = proc.stdout[proc.stdout.index("\ninterrupted: "):]  # the summary is still printed
    assert "results saved to" in summary

    processed = int(re.search(r"interrupted: (\d+) frames from 1 inputs", summary).group(1))
    assert 5 <= processed < 600
    assert proc.stdout.count("video 1/1 (frame ") == processed

    rows = pd.read_csv(run_dir / "predictions.csv")
    assert list(rows.columns) == kit.record_fields
    assert len(rows) > 0 and not rows.isna().any().any(), "every row complete"
    # The frame being worked on when the signal came may or may not have been written.
    assert 0 < rows["frame"].nunique() <= processed + 1

    with open(run_dir / "predictions.json", encoding="utf-8") as f:
        records = json.load(f)
    assert len(records) == len(rows)
    assert all(list(r) == kit.record_fields for r in records)

    video_frames = kit.count_video_frames(run_dir / "long.mp4")
    assert processed <= video_frames <= processed + 1, "the .mp4 must be playable, with every frame written"


def test_kill_9_mid_video_leaves_a_readable_mp4(detect, background, scripted_model, make_video, tmp_path, kit):
    """No Ctrl-C handler runs on SIGKILL (or a power cut): the fragmented MP4 is readable up to its last whole second."""
    av = pytest.importorskip("av", reason="PyAV (brought by supervision, requirements.txt)")
    clip = make_video(tmp_path / "in" / "long.mp4", frames=3000, fps=25.0)
    model = scripted_model([(20, 20, 60, 70, 0, 0.9)])
    argv = detect.argv("--source", clip, "--weights", model)
    proc = background(argv, "detect")
    kit.wait_for(lambda: proc.stdout.count("video 1/1 (frame ") >= 150 or not proc.running(), 90,
                 message="150 frames (6 s of video) to be processed")
    assert proc.running(), f"detect ended before it could be killed: {proc.stdout[-500:]} {proc.stderr[-2000:]}"
    proc.signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    processed = proc.stdout.count("video 1/1 (frame ")
    out = tmp_path / "runs" / "exp" / "long.mp4"
    decoded = 0
    with av.open(str(out)) as container:
        try:
            for _ in container.decode(video=0):
                decoded += 1
        except av.error.InvalidDataError:
            pass  # the fragment being written when it died is cut short: what comes before it plays
    assert 100 <= decoded <= processed + 1, (decoded, processed)  # all but the last second or so
    assert kit.count_video_frames(out) == decoded  # OpenCV reads the same frames
