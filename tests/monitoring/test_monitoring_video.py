"""detect.py --track on a real video of Kaggle faces walking known paths (see conftest.py): people are
counted, not frames; IDs survive two faces crossing; verdicts, line counts and alerts are exact; every
output (CSV, JSON, labels, people.csv, alerts.jsonl, report.html) tells the same story."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest

from maskdet.inference.detect import run

pytestmark = pytest.mark.integration  # the Kaggle faces (skipped when the dataset is absent)


@pytest.fixture(scope="module")
def tracked_run(face_video, tmp_path_factory) -> SimpleNamespace:
    project = tmp_path_factory.mktemp("monitoring_runs")
    logged: list[str] = []
    summary = run(source=str(face_video.path), weights=face_video.model, track=True, line=face_video.line,
                  alert=["without_mask", "mask_weared_incorrect"], alert_after=0.5, save_csv=True, save_json=True,
                  save_txt=True, project=project, quiet=True, log=logged.append, privacy_level="off")  # crops kept: specified here
    out = summary.save_dir
    with open(out / "people.csv", newline="", encoding="utf-8") as f:
        people = list(csv.DictReader(f))
    with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
        predictions = list(csv.DictReader(f))
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    return SimpleNamespace(summary=summary, out=out, people=people, predictions=predictions, alerts=alerts, logged=logged,
                           video=face_video, walk_of=walk_of_tracks(face_video, predictions))


def nearest_walk(video, frame: int, x: float, y: float):
    best = None
    for walk in video.walks:
        centre = walk.centre(frame)
        if centre is not None:
            d = ((centre[0] - x) ** 2 + (centre[1] - y) ** 2) ** 0.5
            if d < 24 and (best is None or d < best[0]):
                best = (d, walk)
    return best[1] if best else None


def walk_of_tracks(video, predictions: list[dict]) -> dict[int, str]:
    """Which face each track ID followed: the walk its boxes were nearest to, most often."""
    votes: dict[int, Counter] = {}
    for row in predictions:
        track_id = int(row["track_id"])
        x = (float(row["x1"]) + float(row["x2"])) / 2
        y = (float(row["y1"]) + float(row["y2"])) / 2
        walk = nearest_walk(video, int(row["frame"]), x, y)
        if track_id >= 0 and walk is not None:
            votes.setdefault(track_id, Counter())[walk.name] += 1
    return {track_id: c.most_common(1)[0][0] for track_id, c in votes.items()}


def test_the_people_counted_are_the_faces_that_entered(tracked_run):
    assert len(tracked_run.people) == len(tracked_run.video.walks)
    assert sorted(tracked_run.walk_of[int(p["track_id"])] for p in tracked_run.people) == sorted(w.name for w in tracked_run.video.walks)
    assert f"people: {len(tracked_run.video.walks)} seen (2 with_mask, 2 without_mask), 50% wearing a mask correctly; " \
           "0 in view at the end" in tracked_run.summary.lines()


def test_two_faces_crossing_switch_ids_at_most_once(tracked_run):
    ids_along: dict[str, list[int]] = {}
    for row in sorted(tracked_run.predictions, key=lambda r: int(r["frame"])):
        x, y = (float(row["x1"]) + float(row["x2"])) / 2, (float(row["y1"]) + float(row["y2"])) / 2
        walk = nearest_walk(tracked_run.video, int(row["frame"]), x, y)
        if walk is not None and int(row["track_id"]) >= 0:
            ids_along.setdefault(walk.name, []).append(int(row["track_id"]))
    switches = {name: sum(a != b for a, b in zip(ids, ids[1:])) for name, ids in ids_along.items()}
    assert switches["A"] + switches["B"] <= 1  # A and B cross once
    assert switches["C"] == switches["D"] == 0  # C and D never meet


def test_each_verdict_matches_the_label_of_the_face(tracked_run):
    labels = {w.name: w.label for w in tracked_run.video.walks}
    for person in tracked_run.people:
        assert person["verdict"] == labels[tracked_run.walk_of[int(person["track_id"])]], person
        assert float(person["verdict_share"]) > 0.5 and int(person["frames"]) >= 5


def test_line_crossings_are_counted_exactly_each_way_by_verdict(tracked_run):
    crossings = {tracked_run.walk_of[int(p["track_id"])]: p["crossings"].split() for p in tracked_run.people}
    assert {name: [c.split("@")[0] for c in cs] for name, cs in crossings.items()} == {"A": [], "B": [], "C": ["in"], "D": ["out"]}
    assert "line: in 1 (1 without_mask); out 1 (1 with_mask)" in tracked_run.summary.lines()


def test_each_unmasked_face_raises_exactly_one_alert_with_its_frame_and_face(tracked_run):
    alerted = Counter(tracked_run.walk_of[a["track_id"]] for a in tracked_run.alerts)
    unmasked = {w.name for w in tracked_run.video.walks if w.label != "with_mask"}
    assert alerted == Counter(unmasked)
    for alert in tracked_run.alerts:
        assert alert["verdict"] == "without_mask" and alert["delivery"] == "not sent (no --alert-url)"
        assert (tracked_run.out / alert["crop"]).stat().st_size > 0 and (tracked_run.out / alert["frame_image"]).stat().st_size > 0
        assert any(line.startswith(f"ALERT #{alert['track_id']} without_mask") for line in tracked_run.logged)
    assert "alerts: 2 raised" in tracked_run.summary.lines()


def test_people_csv_has_times_frames_and_the_best_crop_of_each_face(tracked_run):
    fps = tracked_run.video.fps
    for p in tracked_run.people:
        assert int(p["first_frame"]) < int(p["last_frame"])
        assert float(p["first_time_s"]) == pytest.approx(int(p["first_frame"]) / fps, abs=1e-3)
        crop = tracked_run.out / p["crop"]
        assert crop.parent.name == "people" and crop.stat().st_size > 0


def test_csv_json_and_labels_carry_the_track_id(tracked_run):
    records = json.loads((tracked_run.out / "predictions.json").read_text(encoding="utf-8"))
    assert [r["track_id"] for r in records] == [int(r["track_id"]) for r in tracked_run.predictions]
    people_ids = {int(p["track_id"]) for p in tracked_run.people}
    assert {int(r["track_id"]) for r in tracked_run.predictions} - {-1} == people_ids
    labels = sorted((tracked_run.out / "labels").glob("door_*.txt"))
    last_fields = {line.split()[-1] for path in labels for line in path.read_text().splitlines()}
    assert {int(v) for v in last_fields} - {-1} == people_ids


def test_the_report_is_one_self_contained_file_that_agrees_with_people_csv_and_alerts_jsonl(tracked_run):
    html = (tracked_run.out / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r"src=['\"]([^'\"]*)", html)
    assert sources and all(s.startswith("data:image/") for s in sources)  # opens offline: nothing to fetch
    assert "http://" not in html and "https://" not in html and "<link" not in html and "<script" not in html
    assert "data:image/png;base64," in html  # the plot of people per minute
    assert sorted(int(i) for i in re.findall(r"<tr id='person-(\d+)'>", html)) == sorted(int(p["track_id"]) for p in tracked_run.people)
    assert len(re.findall(r"<tr id='person-\d+'><td><img", html)) == len(tracked_run.people)  # a thumbnail each
    assert f"<h2>Alerts ({len(tracked_run.alerts)})</h2>" in html
    assert "<tr class='totals'>" not in html and "<td class='num'>4</td><td class='num'>2</td><td class='num'>2</td><td class='num'>0</td>" in html


def test_the_annotated_video_is_written(tracked_run):
    assert Path(tracked_run.out / "door.mp4").stat().st_size > 0


def test_the_pt_model_is_tracked_like_the_onnx_one(face_video, tmp_path):
    pt = face_video.model.with_suffix(".pt")
    if not pt.exists():
        pytest.skip(f"no {pt}")
    pytest.importorskip("ultralytics", reason="the .pt model needs PyTorch and Ultralytics (requirements-train.txt)")
    path = tmp_path / "still.mp4"  # two faces drifting slowly, 12 frames: the .pt path is slower on a CPU
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), face_video.fps, face_video.size)
    for i in range(12):
        canvas = face_video.background()
        face_video.paste(canvas, face_video.crops["A"], (80 + 2 * i, 100))
        face_video.paste(canvas, face_video.crops["B"], (240 - 2 * i, 140))
        writer.write(canvas)
    writer.release()
    summary = run(source=str(path), weights=pt, track=True, save_csv=True, project=tmp_path / "runs", quiet=True,
                  log=lambda _: None)
    with open(summary.save_dir / "people.csv", newline="", encoding="utf-8") as f:
        people = list(csv.DictReader(f))
    assert sorted(p["verdict"] for p in people) == ["with_mask", "without_mask"]
    assert all(int(p["frames"]) == 11 for p in people)  # confirmed on the 2nd frame, then one ID throughout
