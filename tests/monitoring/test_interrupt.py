"""Ctrl-C or SIGTERM in the middle of a video: report.html, people.csv and alerts.jsonl are complete and
agree with each other (the same people, the same alerts), as the other outputs do. A run killed with kill -9
still leaves a report, one that says the run was still going."""

from __future__ import annotations

import csv
import json
import re
import signal
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # the Kaggle faces (skipped when the dataset is absent)
ROOT = Path(__file__).resolve().parents[2]


def data_rows(path: Path) -> int:
    try:
        return max(0, len(path.read_text(encoding="utf-8").splitlines()) - 1)
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_leaves_report_people_and_alerts_that_agree(face_video, helpers, tmp_path, sig):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{face_video.path}\n" * 4, encoding="utf-8")  # four passes: stopped during a later one
    run_dir = tmp_path / "runs" / "exp"
    argv = [sys.executable, str(ROOT / "detect.py"), "--source", str(listing), "--weights", str(face_video.model),
            "--track", "--alert", "without_mask", "--alert-after", "0.5", "--project", str(tmp_path / "runs")]
    proc = helpers.Background(argv, tmp_path / "logs", "detect", cwd=tmp_path)
    try:
        helpers.wait_for(lambda: data_rows(run_dir / "people.csv") >= 2 or not proc.running(), 240,
                         message="people to leave the view in the first pass")
        assert proc.running(), proc.stderr[-3000:]
        proc.signal(sig)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.stop()
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "interrupted: " in proc.stdout

    with open(run_dir / "people.csv", newline="", encoding="utf-8") as f:
        people = list(csv.DictReader(f))
    alerts = [json.loads(line) for line in (run_dir / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    html = (run_dir / "report.html").read_text(encoding="utf-8")

    people_ids = sorted(int(p["track_id"]) for p in people)
    assert people_ids and sorted(int(i) for i in re.findall(r"<tr id='person-(\d+)'>", html)) == people_ids
    assert f"<h2>People ({len(people)})</h2>" in html and "The run was interrupted" in html
    assert f"<h2>Alerts ({len(alerts)})</h2>" in html and len(alerts) >= 1
    assert {a["track_id"] for a in alerts} <= set(people_ids)  # everyone alerted on is a person in the table
    assert len({a["track_id"] for a in alerts}) == len(alerts)  # one alert per person
    assert all(person["crop"] == "" for person in people)  # blurred by default: no face crop is kept
    assert not (run_dir / "people").exists()
    assert f"people: {len(people)} seen" in proc.stdout


def test_a_run_killed_with_kill_9_leaves_a_report_that_says_it_was_still_going(face_video, helpers, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{face_video.path}\n" * 8, encoding="utf-8")  # still going when it is killed, however slow the test
    run_dir = tmp_path / "runs" / "exp"
    argv = [sys.executable, str(ROOT / "detect.py"), "--source", str(listing), "--weights", str(face_video.model),
            "--track", "--project", str(tmp_path / "runs")]
    proc = helpers.Background(argv, tmp_path / "logs", "detect", cwd=tmp_path)
    try:
        helpers.wait_for(lambda: (run_dir / "report.html").exists() or not proc.running(), 240,
                         message="the report of the first frame")
        assert proc.running(), proc.stdout[-2000:] + proc.stderr[-3000:]
        proc.signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        proc.stop()
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "The run was still going" in html and html.rstrip().endswith("</html>")
