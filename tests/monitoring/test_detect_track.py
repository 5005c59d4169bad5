"""detect.py --track end to end with a scripted model (a real ONNX file that always reports the same boxes):
image folders are one view, labels show '#id', the webhook gets each alert through a real HTTP server even
when it refuses at first, a dead one leaves alerts undelivered and listed, and bad flags are one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdet.inference.detect import run
from maskdet.inference.detections import Detections
from maskdet.inference.visualize import Annotator, text_style

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")
FACE = (60, 30, 100, 80)  # x1, y1, x2, y2 in a 160x120 frame


def scripted(helpers, tmp_path: Path, cls: int = 1, score: float = 0.9) -> Path:
    """A model that sees one face at FACE, of class cls, on any 160x120 image."""
    box = helpers.to_model_pixels(FACE, (160, 120), 160)
    return helpers.write_scripted_onnx(tmp_path / "scripted.onnx", [(*box, cls, score)], 160)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_folder_of_images_is_one_view_with_one_person_in_it(tmp_path, helpers):
    folder = tmp_path / "shots"
    helpers.write_images(folder, n=8)
    summary = run(source=str(folder), weights=scripted(helpers, tmp_path, cls=0), track=True, save_csv=True,
                  project=tmp_path / "runs", quiet=True, log=lambda _: None)
    rows = (summary.save_dir / "people.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 and rows[1].split(",")[0] == "1"
    # confirmed on the 2nd image, then on every one: frames 1 to 7 of the folder, with_mask on each
    assert ",0.04,1,0.28,7,7,with_mask,1.0,0.9,," in rows[1]
    predictions = (summary.save_dir / "predictions.csv").read_text(encoding="utf-8").splitlines()
    assert predictions[0].endswith(",track_id") and [r.split(",")[-1] for r in predictions[1:]] == ["-1"] + ["1"] * 7


def test_tracked_boxes_are_labelled_id_class_confidence():
    det = Detections(np.array([FACE], np.float32), np.array([0.9], np.float32), np.array([1]), NAMES)
    det.tracker_id = np.array([7])
    image = Annotator(NAMES, line_thickness=2)(np.zeros((120, 400, 3), np.uint8), det)
    tag = image[:FACE[1] - 2]  # above the box: the filled label tag
    width = int((tag == (54, 67, 244)).all(axis=2).any(axis=0).sum())  # its columns in without_mask red
    scale, stroke = text_style(2)
    (expected, _), _ = cv2.getTextSize("#7 without_mask 0.90", cv2.FONT_HERSHEY_SIMPLEX, scale, stroke)
    (untracked, _), _ = cv2.getTextSize("without_mask 0.90", cv2.FONT_HERSHEY_SIMPLEX, scale, stroke)
    assert abs(width - expected) <= 2 * stroke + 2 and width > untracked + 10
    assert det.track_label(0) == "#7 "


def test_alerts_reach_a_webhook_that_refuses_at_first(tmp_path, receiver, helpers):
    server = receiver(refuse=2)
    video = helpers.write_video(tmp_path / "door.mp4", frames=30)
    logged: list[str] = []
    summary = run(source=str(video), weights=scripted(helpers, tmp_path), alert=["without_mask"], alert_after=0.2,
                  alert_url=server.url, project=tmp_path / "runs", quiet=True, log=logged.append)
    assert summary.frames == 30
    (record,) = read_jsonl(summary.save_dir / "alerts.jsonl")
    assert record["delivery"] == "delivered" and server.attempts == 3
    (sent,) = server.received
    assert sent == {k: v for k, v in record.items() if k != "delivery"}
    assert sent["track_id"] == 1 and sent["verdict"] == "without_mask" and sent["source"] == str(video)
    assert sent["box"] == pytest.approx(list(FACE), abs=1) and sent["confidence"] == pytest.approx(0.9, abs=1e-3)
    assert (summary.save_dir / sent["frame_image"]).exists() and sent["time"]
    assert "crop" not in sent  # monitoring blurs by default (--privacy blur): no face crop is kept or sent
    assert "alerts: 1 raised, 1 delivered, 0 undelivered (listed in alerts.jsonl)" in summary.lines()


def test_a_dead_webhook_stops_nothing_and_its_alerts_are_listed_undelivered(tmp_path, receiver, helpers):
    server = receiver()
    server.stop()
    video = helpers.write_video(tmp_path / "door.mp4", frames=30)
    logged: list[str] = []
    summary = run(source=str(video), weights=scripted(helpers, tmp_path), track=True, alert=["without_mask"], alert_after=0.2,
                  alert_url=server.url, project=tmp_path / "runs", quiet=True, log=logged.append)
    assert summary.frames == 30 and not summary.interrupted
    (record,) = read_jsonl(summary.save_dir / "alerts.jsonl")
    assert record["delivery"].startswith("undelivered")
    assert any(line.startswith("undelivered alert: #1 without_mask") for line in logged)
    assert "alerts: 1 raised, 0 delivered, 1 undelivered (listed in alerts.jsonl)" in summary.lines()
    assert "undelivered" in (summary.save_dir / "report.html").read_text(encoding="utf-8")


def test_a_hanging_webhook_does_not_hold_up_detection(tmp_path, receiver, helpers):
    server = receiver()
    server.hold = threading.Event()  # the server takes the request and never answers until released
    video = helpers.write_video(tmp_path / "door.mp4", frames=40)
    try:
        summary = run(source=str(video), weights=scripted(helpers, tmp_path), alert=["without_mask"], alert_after=0.2,
                      alert_url=server.url, project=tmp_path / "runs", quiet=True, log=lambda _: None)
        assert server.waiting.acquire(timeout=1)  # the alert reached the server during the run ...
        assert summary.frames == 40  # ... and every frame was done while it hung (released only below)
    finally:
        server.hold.set()
    (record,) = read_jsonl(summary.save_dir / "alerts.jsonl")
    assert record["frame"] < 20 and record["delivery"].startswith("undelivered")


@pytest.mark.parametrize("args, fragment", [
    (["--alert", "without_mask", "--alert-url", "ftp://host/hook"], "--alert-url must be an http:// or https:// URL"),
    (["--track", "--line", "1,2,3"], "--line must be x1,y1,x2,y2"),
    (["--alert", "no_mask"], "--alert: unknown class 'no_mask'"),
    (["--track", "--alert-url", "http://127.0.0.1:9/hook"], "--alert-url needs --alert"),
])
def test_bad_monitoring_flags_are_one_line_errors_and_create_no_run_folder(tmp_path, helpers, args, fragment):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((120, 160, 3), np.uint8))
    proc = subprocess.run([sys.executable, str(ROOT / "detect.py"), "--source", str(image), "--weights", str(scripted(helpers, tmp_path)),
                           "--project", str(tmp_path / "runs"), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and fragment in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_line_in_pixels_outside_the_frames_is_a_warning_once_per_frame_size(tmp_path, helpers):
    folder = tmp_path / "shots"
    helpers.write_images(folder, n=3)  # 160x120
    notes: list[str] = []
    run(source=str(folder), weights=scripted(helpers, tmp_path), line="0,500,1000,500", project=tmp_path / "runs",
        quiet=True, log=notes.append)
    (warning,) = [n for n in notes if "--line" in n]
    assert warning.startswith(f"warning: {folder}") and "lies outside the 160x120 frame" in warning
    notes.clear()
    run(source=str(folder), weights=scripted(helpers, tmp_path), line="0,60,160,60", project=tmp_path / "runs",
        quiet=True, log=notes.append)
    assert not [n for n in notes if "--line" in n]


def test_a_live_stream_is_tracked_and_its_person_written_when_it_ends(tmp_path, helpers):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (it serves the test stream)")
    server = helpers.StreamServer(helpers.write_video(tmp_path / "loop.mp4", frames=50), tmp_path / "logs")
    server.start()
    result: dict = {}

    def detect() -> None:
        result["summary"] = run(source=server.url, weights=scripted(helpers, tmp_path, cls=2), track=True, save_csv=True,
                                stream_timeout=2, project=tmp_path / "runs", quiet=True, log=lambda _: None)

    worker = threading.Thread(target=detect)
    worker.start()
    try:
        predictions = tmp_path / "runs" / "exp" / "predictions.csv"
        helpers.wait_for(lambda: predictions.exists() and len(predictions.read_text().splitlines()) > 10 or not worker.is_alive(),
                         60, message="frames from the stream")
    finally:
        server.stop()  # the stream ends: after --stream-timeout the run ends
        worker.join(60)
    summary = result["summary"]
    rows = (summary.save_dir / "people.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 and ",mask_weared_incorrect,1.0," in rows[1] and str(server.url) in rows[1]
    ids = {line.split(",")[-1] for line in (summary.save_dir / "predictions.csv").read_text().splitlines()[1:]}
    assert ids <= {"-1", "1"} and "1" in ids


def test_without_the_trackers_package_track_says_what_to_install_in_one_line(tmp_path, helpers):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((120, 160, 3), np.uint8))
    argv = [str(ROOT / "detect.py"), "--source", str(image), "--weights", str(scripted(helpers, tmp_path)),
            "--project", str(tmp_path / "runs"), "--track"]
    blocked = (f"import sys, runpy; sys.modules['trackers'] = None; sys.path.insert(0, {str(ROOT)!r}); "  # as if not installed
               f"sys.argv = {argv!r}; sys.exit(runpy.run_path({argv[0]!r}, run_name='__main__'))")
    proc = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == "error: this needs 'trackers', which is not installed: pip install -r requirements.txt"
    assert not (tmp_path / "runs").exists()


def test_exist_ok_into_an_earlier_monitoring_run_is_refused_and_its_records_kept(tmp_path, helpers):
    """Its people.csv and alerts.jsonl would be replaced (a new run's track ids start again at 1)."""
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((120, 160, 3), np.uint8))
    args = [sys.executable, str(ROOT / "detect.py"), "--source", str(image), "--weights", str(scripted(helpers, tmp_path)),
            "--project", str(tmp_path / "runs"), "--name", "door", "--alert", "without_mask", "--alert-after", "0",
            "--min-frames", "1"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "runs" / "door"
    before = {name: (run_dir / name).read_bytes() for name in ("people.csv", "alerts.jsonl", "report.html")}
    again = subprocess.run([*args, "--exist-ok"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr
    assert again.stderr.startswith(f"error: {run_dir}: holds an earlier monitoring run's people.csv, alerts.jsonl")
    assert {name: (run_dir / name).read_bytes() for name in before} == before
