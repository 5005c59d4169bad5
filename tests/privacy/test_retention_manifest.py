"""--retain deletes only what monitoring runs wrote: a folder of the user's own reused with --exist-ok never gets the
marker, the marker lists the files its runs wrote (its manifest), and a file of the user's in a run folder -- even one
named like an output -- stays, while the real outputs of real runs past the duration still go. A malformed table in
another run folder is skipped with a note, and a marker left "running" by a killed process is made honest: the
outputs it wrote after its last update (at most a minute before it died) are listed then, and go in their turn."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskdet.errors import UserError
from maskdet.inference.detect import run
from maskdet.privacy import retention
from maskdet.privacy.retention import MARKER, RunMarker, sweep

FACE = (60, 30, 100, 80)  # x1, y1, x2, y2 in a 160x120 frame
HOUR_AGO = time.time() - 3600


def scripted(helpers, tmp_path: Path) -> Path:
    """A model that sees one face without a mask at FACE on any 160x120 image."""
    box = helpers.to_model_pixels(FACE, (160, 120), 160)
    return helpers.write_scripted_onnx(tmp_path / "scripted.onnx", [(*box, 1, 0.9)], 160)


def monitored(helpers, tmp_path: Path, project: Path, **extra):
    video = tmp_path / "door.mp4"
    if not video.exists():
        helpers.write_video(video, frames=10)
    return run(source=str(video), weights=scripted(helpers, tmp_path), track=True, min_frames=1, project=project,
               quiet=True, log=lambda _m: None, **extra)


def age(path: Path) -> None:
    os.utime(path, (HOUR_AGO, HOUR_AGO))


def holiday_folder(project: Path) -> dict[Path, bytes]:
    """The user's own folder of photos, a video and a table of theirs, old."""
    folder = project / "Holiday"
    folder.mkdir(parents=True)
    files = {folder / "beach.png": b"\x89PNG the beach", folder / "wedding.mp4": b"\0\0\0\x18ftyp the wedding",
             folder / "predictions.csv": b"a,b\n1,2\n"}
    for path, data in files.items():
        path.write_bytes(data)
        age(path)
    return files


def test_retain_into_a_folder_of_the_users_with_exist_ok_is_refused_and_deletes_nothing(helpers, tmp_path):
    project = tmp_path / "R"
    files = holiday_folder(project)
    with pytest.raises(UserError, match="was not made by a monitoring run"):
        monitored(helpers, tmp_path, project, name="Holiday", exist_ok=True, privacy_retain="1d")
    assert all(path.read_bytes() == data for path, data in files.items())
    assert not (project / "Holiday" / MARKER).exists()


def test_monitoring_into_a_folder_of_the_users_does_not_mark_it_so_a_later_retain_leaves_it_alone(helpers, tmp_path):
    project = tmp_path / "R"
    files = holiday_folder(project)
    monitored(helpers, tmp_path, project, name="Holiday", exist_ok=True)
    assert not (project / "Holiday" / MARKER).exists()
    monitored(helpers, tmp_path, project, privacy_retain="30m")  # a run of its own beside it, sweeping the project
    assert all(path.read_bytes() == data for path, data in files.items())


def test_a_users_file_in_a_run_folder_stays_while_the_runs_own_old_outputs_go(helpers, tmp_path):
    project = tmp_path / "R"
    old = monitored(helpers, tmp_path, project, save_csv=True).save_dir
    outputs = json.loads((old / MARKER).read_text(encoding="utf-8"))["outputs"]
    assert {"door.mp4", "people.csv", "alerts.jsonl", "report.html", "predictions.csv"} <= set(outputs)
    theirs = old / "beach.png"  # put there by the user after the run, named like an annotated image
    theirs.write_bytes(b"\x89PNG the beach")
    for path in old.rglob("*"):
        if path.is_file():
            age(path)
    new = monitored(helpers, tmp_path, project, privacy_retain="30m")
    assert theirs.read_bytes() == b"\x89PNG the beach"
    assert not (old / "door.mp4").exists() and not (old / "report.html").exists()
    assert not (old / "predictions.csv").exists()
    assert (new.save_dir / "door.mp4").is_file()  # its own, new: kept


def test_a_malformed_table_in_another_run_folder_is_skipped_with_a_note(tmp_path):
    run_dir = tmp_path / "runs" / "exp"
    run_dir.mkdir(parents=True)
    (run_dir / MARKER).write_text(json.dumps({"running": False, "outputs": ["counts.json", "old.png"]}), encoding="utf-8")
    (run_dir / "counts.json").write_text("[]", encoding="utf-8")
    (run_dir / "old.png").write_bytes(b"\x89PNG")
    age(run_dir / "old.png")
    notes: list[str] = []
    files, rows = sweep(tmp_path / "runs", 60, log=notes.append)
    assert (files, rows) == (1, 0) and not (run_dir / "old.png").exists()
    assert len(notes) == 1 and notes[0].startswith("note: --retain skipped") and "counts.json" in notes[0]


def test_a_marker_left_running_by_a_killed_process_says_it_ended_without_closing(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run_dir = tmp_path / "runs" / "exp"
    run_dir.mkdir(parents=True)
    (run_dir / MARKER).write_text(json.dumps({"pid": int(gone.stdout), "running": True, "outputs": []}), encoding="utf-8")
    notes: list[str] = []
    sweep(tmp_path / "runs", 60, log=notes.append)
    marker = json.loads((run_dir / MARKER).read_text(encoding="utf-8"))
    assert marker["running"] is False and marker["ended"].startswith("without closing")
    assert any("ended without closing" in note for note in notes)


@pytest.mark.parametrize("killed", ["its process is gone", "its pid is this sweeping process's"])
def test_the_outputs_a_killed_run_wrote_after_its_last_update_are_listed_by_the_next_sweep_and_go(killed, tmp_path):
    """Its last update was 4 hours ago; it wrote an alert's picture 30 s later and died. The user's photo from
    before the run and one they put in the folder 2 hours later are not the run's. Its PID may have come back
    (a restarted container's PID 1 is the next run): the process's start time tells them apart."""
    if killed == "its process is gone":
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        process = {"pid": int(gone.stdout)}
    else:
        if retention.process_start(os.getpid()) is None:
            pytest.skip("needs /proc to tell a process's start time")
        process = {"pid": os.getpid(), "process_start": "another boot:123"}
    run_dir = tmp_path / "runs" / "exp"
    (run_dir / "alerts").mkdir(parents=True)
    updated = time.time() - 4 * 3600
    (run_dir / MARKER).write_text(json.dumps({**process, "running": True, "outputs": []}), encoding="utf-8")
    os.utime(run_dir / MARKER, (updated, updated))
    cut_short = ".report.html.k2j9x1ab.tmp"  # the report's rewrite the kill cut short: its faces, in thumbnails
    written = {run_dir / "alerts" / "alert-1.jpg": updated + 30, run_dir / cut_short: updated + 40,
               run_dir / "beach.png": updated - 3600, run_dir / "later.png": updated + 2 * 3600}
    for path, when in written.items():
        path.write_bytes(b"\xff\xd8 a picture")
        os.utime(path, (when, when))
    files, _ = sweep(tmp_path / "runs", 60, current=tmp_path / "runs" / "exp2")
    assert files == 2 and not (run_dir / "alerts" / "alert-1.jpg").exists() and not (run_dir / cut_short).exists()
    assert (run_dir / "beach.png").exists() and (run_dir / "later.png").exists()
    assert json.loads((run_dir / MARKER).read_text(encoding="utf-8"))["outputs"] == [cut_short, "alerts/alert-1.jpg"]


def test_a_running_run_lists_its_new_outputs_once_a_minute_has_passed(tmp_path, monkeypatch):
    marker = RunMarker(tmp_path, "blur")
    marker.update()
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "alert-1.jpg").write_bytes(b"\xff\xd8")
    listed = lambda: json.loads((tmp_path / MARKER).read_text(encoding="utf-8"))["outputs"]  # noqa: E731
    marker.keep_up()  # called on every frame: within the minute, nothing is walked or written
    assert listed() == []
    monkeypatch.setattr(retention, "MANIFEST_EVERY_S", 0.0)  # the minute has passed
    marker.keep_up()
    assert listed() == ["alerts/alert-1.jpg"]


def test_retain_into_an_empty_folder_with_exist_ok_marks_it(helpers, tmp_path):
    project = tmp_path / "R"
    (project / "fresh").mkdir(parents=True)
    summary = monitored(helpers, tmp_path, project, name="fresh", exist_ok=True, privacy_retain="1d")
    assert (summary.save_dir / MARKER).is_file()
    shutil.rmtree(project)
