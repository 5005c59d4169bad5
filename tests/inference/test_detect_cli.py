"""The command line speaks YOLOv5's detect.py (its flags and their aliases), and the same pipeline is a
Python function returning a summary."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from maskdet.inference.detect import DetectSummary, run

YOLOV5_FLAGS = ["--source", "--weights", "--imgsz", "--conf", "--conf-thres", "--iou", "--iou-thres", "--max-det",
                "--classes", "--agnostic-nms", "--device", "--half", "--show", "--view-img", "--nosave", "--save-txt",
                "--save-conf", "--save-crop", "--save-csv", "--save-json", "--project", "--name", "--exist-ok",
                "--line-thickness", "--hide-labels", "--hide-conf", "--vid-stride"]


@pytest.fixture(scope="module")
def help_text(kit) -> str:
    proc = subprocess.run([sys.executable, str(kit.root / "detect.py"), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("flag", YOLOV5_FLAGS)
def test_help_lists_every_yolov5_flag(help_text, flag):
    assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text), f"{flag} missing from --help"


def test_help_shows_the_kinds_of_source_and_how_to_stop(help_text):
    for fragment in ("webcam", "rtsp://", "list.txt", "Ctrl-C"):
        assert fragment in help_text


def test_view_img_and_thres_aliases_parse_like_the_short_names(monkeypatch):
    from maskdet.cli import detect as cli

    seen = {}

    def fake_run(**kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(cli, "run", fake_run)
    monkeypatch.setattr(cli, "quiet_opencv_logs", lambda: None)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit):
            cli.main(["--source", "x.jpg", "--view-img", "--conf-thres", "0.4", "--iou-thres", "0.6", "--img", "320"])
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert seen["show"] is True and seen["conf"] == 0.4 and seen["iou"] == 0.6 and seen["imgsz"] == 320


def test_an_unknown_flag_is_a_usage_error(kit):
    proc = subprocess.run([sys.executable, str(kit.root / "detect.py"), "--no-such-flag"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "unrecognized arguments: --no-such-flag" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_is_a_python_api_returning_a_summary(model, make_images, tmp_path, kit):
    make_images(tmp_path / "in", n=2)
    logged = []
    summary = run(source=str(tmp_path / "in"), weights=model.onnx, conf=float(kit.low_conf), save_csv=True,
                  project=tmp_path / "runs", quiet=True, log=logged.append)
    assert isinstance(summary, DetectSummary)
    assert summary.frames == 2 and summary.sources == 2 and not summary.interrupted
    assert sum(summary.detections.values()) > 0
    assert set(summary.detections) <= set(kit.names)
    assert summary.save_dir == tmp_path / "runs" / "exp"
    assert sorted(p.name for p in summary.saved) == ["scene0.png", "scene1.png"]
    rows = kit.read_csv_rows(summary.save_dir / "predictions.csv")[1]
    assert len(rows) == sum(summary.detections.values())
    assert summary.fps > 0 and summary.stage_ms["inference"] > 0
    lines = summary.lines()
    assert lines[0].startswith("2 frames from 2 inputs") and lines[-1] == f"results saved to {summary.save_dir}"
    assert logged == []


def test_run_raises_user_error_for_bad_input(model, tmp_path):
    from maskdet.errors import UserError

    with pytest.raises(UserError, match="nothing to read"):
        run(source=str(tmp_path / "missing.jpg"), weights=model.onnx, project=tmp_path / "runs", quiet=True)


@pytest.mark.parametrize("flags, why", [
    (["--alert-url", "http://127.0.0.1:9/hook"], "--alert-url needs --alert CLASS"),
    (["--tile-overlap", "0.5"], "--tile-overlap is the overlap of --tile's tiles: add --tile"),
    (["--save-conf"], "--save-conf adds the confidence to --save-txt's label lines: add --save-txt"),
    (["--min-frames", "9"], "--min-frames is the frames a track needs to count as a person: add --track"),
    (["--track", "--alert-after", "3"], "--alert-after is how long a verdict holds before its alert: add --alert CLASS"),
])
def test_a_flag_that_needs_another_is_one_line_without_it_not_ignored(detect, tools, kit, tmp_path, flags, why):
    tools.assert_one_line_error(detect("--source", kit.root / "samples" / "images" / "astronaut.jpg", *flags), why)
    assert not (tmp_path / "runs").exists()


def test_exist_ok_into_the_folder_of_the_photos_is_refused_and_the_photos_stay_as_they_were(model, make_images, tmp_path):
    from maskdet.errors import UserError

    photos = tmp_path / "shop" / "photos"
    make_images(photos, n=2)
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    for project, name in ((tmp_path / "shop", "photos"), (tmp_path, "shop")):  # the folder itself, or one above it
        with pytest.raises(UserError, match="it holds the inputs .* would replace files of yours"):
            run(source=str(photos), weights=model.onnx, project=project, name=name, exist_ok=True, save_txt=True,
                quiet=True)
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    assert sorted(p.name for p in (tmp_path / "shop").iterdir()) == ["photos"]


def test_a_run_that_fails_before_its_first_frame_leaves_no_folder_it_made(model, tmp_path):
    from maskdet.errors import UserError

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo\n")
    with pytest.raises(UserError, match="cannot read this image"):
        run(source=str(broken), weights=model.onnx, project=tmp_path / "new" / "runs", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.jpg"]
