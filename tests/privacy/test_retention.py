"""--retain: the outputs of monitoring runs older than the duration are deleted -- files by age, table rows by
the time in them -- at each start and while a run goes on, only inside run folders detect.py made; files of
the user's beside them are never touched."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import pytest
from privacy_outputs import ROOT, monitoring, written_files

from maskdet.errors import UserError
from maskdet.inference.detect import run
from maskdet.privacy.retention import MARKER
from maskdet.settings import parse_duration

pytestmark = pytest.mark.integration  # the Kaggle faces (skipped when the dataset is absent)
HOUR_AGO = time.time() - 3600


def iso(seconds_ago: float) -> str:
    return (datetime.now().astimezone() - timedelta(seconds=seconds_ago)).isoformat(timespec="seconds")


def frames_folder(video, folder: Path) -> Path:
    """Three frames of the face video where A and B are both in view, as photos."""
    folder.mkdir(parents=True)
    cap = cv2.VideoCapture(str(video.path))
    for i in range(16):
        ok, image = cap.read()
        assert ok
        if i in (10, 12, 14):
            cv2.imwrite(str(folder / f"frame{i:02d}.png"), image)
    cap.release()
    return folder


def monitored(video, source: Path, project: Path, **extra):
    return run(source=str(source), weights=video.model, track=True, min_frames=1, alert=["without_mask"], alert_after=0,
               project=project, quiet=True, log=lambda _m: None, **extra)


def age(path: Path, when: float = HOUR_AGO) -> None:
    os.utime(path, (when, when))


def age_rows(run_dir: Path, old: int) -> None:
    """The first `old` rows of people.csv and every alert seen an hour ago; the files too."""
    with open(run_dir / "people.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader), reader.fieldnames
    for row in rows[:old]:
        row["first_seen_at"] = iso(3600)
    with open(run_dir / "people.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    alerts = [json.loads(line) for line in (run_dir / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    (run_dir / "alerts.jsonl").write_text("".join(json.dumps({**a, "time": iso(3600)}) + "\n" for a in alerts), encoding="utf-8")
    for path in written_files(run_dir):
        age(path)


def people_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "people.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def user_files(tmp_path) -> dict[Path, tuple[bytes, float]]:
    """Files of the user's in the project folder, old: never to be touched."""
    project = tmp_path / "runs"
    files = [project / "notes.txt", project / "mine" / "photo.jpg", project / "mine" / "report.html"]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"the user's own " + path.name.encode())
        age(path)
    return {p: (p.read_bytes(), p.stat().st_mtime) for p in files}


def assert_untouched(user_files) -> None:
    for path, (data, mtime) in user_files.items():
        assert path.read_bytes() == data and path.stat().st_mtime == mtime, path


def test_a_start_deletes_what_earlier_runs_left_past_the_duration(face_video, tmp_path, user_files):
    photos = frames_folder(face_video, tmp_path / "photos")
    project = tmp_path / "runs"
    old = monitored(face_video, photos, project).save_dir
    assert len(people_rows(old)) == 2 and list((old / "alerts").glob("*.jpg"))
    age_rows(old, old=1)

    new = monitored(face_video, photos, project, privacy_retain="30m")
    left = sorted(p.relative_to(old).as_posix() for p in written_files(old))
    assert left == [MARKER, "alerts.jsonl", "people.csv"]  # frames, alert pictures, report: gone
    assert len(people_rows(old)) == 1 and (old / "alerts.jsonl").read_text(encoding="utf-8") == ""
    assert_untouched(user_files)
    assert (new.save_dir / "report.html").is_file() and list(new.save_dir.glob("*.png"))  # its own: kept
    assert any(line.startswith("retention: deleted ") for line in new.lines())

    age_rows(old, old=1)  # the last row too
    monitored(face_video, photos, project, privacy_retain="30m")
    assert not old.exists()  # nothing left but the marker: the folder goes
    assert (new.save_dir / "report.html").is_file()
    assert_untouched(user_files)


def test_files_of_the_users_inside_a_run_folder_are_kept_and_so_is_the_folder(face_video, tmp_path):
    """A note, a table of one's own, a folder of one's own: not what a run writes, so never swept."""
    photos = frames_folder(face_video, tmp_path / "photos")
    project = tmp_path / "runs"
    old = monitored(face_video, photos, project).save_dir
    mine = [old / "notes.txt", old / "results.csv", old / "summary.json", old / "mine" / "photo.jpg",
            old / "people" / "notes.txt"]
    for path in mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"the user's own " + path.name.encode())
    age_rows(old, old=2)
    for path in mine:
        age(path)
    monitored(face_video, photos, project, privacy_retain="30m")
    assert all(path.read_bytes() == b"the user's own " + path.name.encode() for path in mine)
    assert not list(old.glob("*.png")) and not (old / "report.html").exists()  # the run's own outputs: gone


def test_a_running_process_deletes_as_outputs_age(face_video, tmp_path, user_files, helpers):
    photos = frames_folder(face_video, tmp_path / "photos")
    project = tmp_path / "runs"
    old = monitored(face_video, photos, project).save_dir
    sources = tmp_path / "list.txt"
    copies = []  # distinct files: detect.py reads a file reached twice only once
    for n in range(40):
        copies.append(shutil.copy(face_video.path, tmp_path / f"clip{n}{Path(face_video.path).suffix}"))
    sources.write_text("".join(f"{c}\n" for c in copies), encoding="utf-8")  # minutes of video: stopped by the test
    bg = helpers.Background([sys.executable, str(ROOT / "detect.py"), "--source", str(sources), "--track", "--retain",
                             "20s", "--project", str(project), "--name", "live", "--quiet", "--nosave"],
                            tmp_path / "logs", "detect")
    try:
        live = project / "live"
        helpers.wait_for(lambda: (live / "people.csv").is_file() or not bg.running(), 120, message="the run to start")
        assert bg.running(), bg.stderr
        late = sorted((old / "alerts").glob("*.jpg"))[0]  # an output the old run wrote (in its manifest), aged now
        aged_id = people_rows(old)[0]["track_id"]
        age_rows(old, old=1)
        age(late)
        ids = lambda: {r["track_id"] for r in people_rows(old)} if (old / "people.csv").exists() else set()  # noqa: E731
        helpers.wait_for(lambda: not late.exists() and aged_id not in ids(), 60, message="the running process to sweep")
        assert bg.running(), "swept while running, not at the end"
        assert_untouched(user_files)
    finally:
        bg.signal(signal.SIGINT)
        assert bg.wait(60) == 130, bg.stderr
    helpers.assert_clean_stderr(bg.stderr)
    assert "retention: deleted" in bg.stdout


@pytest.mark.parametrize("text, seconds", [("72h", 259200), ("20m", 1200), ("30s", 30), ("7d", 604800), ("1.5h", 5400),
                                           ("3600", 3600)])
def test_durations_read_as_people_write_them(text, seconds):
    assert parse_duration(text, "--retain") == seconds


@pytest.mark.parametrize("text", ["h", "-3h", "0s", "3w", "99999d", "nan", "", "0.5"])
def test_other_durations_are_one_line_errors(text):
    with pytest.raises(UserError, match="--retain"):
        parse_duration(text, "--retain")


def test_retain_without_monitoring_is_refused(tmp_path):
    with pytest.raises(UserError, match="--retain"):
        run(source=str(ROOT / "samples"), privacy_retain="1h", project=tmp_path, privacy_level="off",
            weights=monitoring.MODEL)


@pytest.mark.parametrize("args, message", [
    (["--track", "--retain", "3 weeks"], "error: --retain must be a number and a unit"),
    (["--track", "--privacy", "counts", "--save-csv"], "error: --privacy counts keeps counts only: leave out --save-csv"),
    (["--track", "--period", "5m"], "error: --period is the length of a row of --privacy counts"),
])
def test_detect_py_says_what_is_wrong_in_one_line(args, message, tmp_path):
    import subprocess

    proc = subprocess.run([sys.executable, str(ROOT / "detect.py"), "--source", str(tmp_path), "--project", str(tmp_path / "runs"),
                           *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().startswith(message), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()
