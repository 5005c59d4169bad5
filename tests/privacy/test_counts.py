"""--privacy counts (France's decree 2021-269): a monitoring run on a video of known faces writes counts by
verdict per period and nothing else about anyone: no image, video, crop or inlined picture of any kind, no
row per person, no track ID in its alerts; the counts match the faces that walked through."""

from __future__ import annotations

import csv
import json
from collections import Counter
from types import SimpleNamespace

import pytest
from privacy_outputs import looks_like_picture, monitoring, written_files

from maskdet.errors import UserError
from maskdet.inference.detect import run
from maskdet.privacy.retention import MARKER

pytestmark = pytest.mark.integration  # the Kaggle faces (skipped when the dataset is absent)
PERIOD_S = 120  # the shortest period there is
TIMELAPSE_FPS = 0.25  # the face video's frames one every 4 s: its 64 frames span three periods
PERSON_KEYS = {"track_id", "box", "crop", "frame_image", "x1", "y1", "x2", "y2", "first_seen_at", "first_frame"}


@pytest.fixture(scope="module")
def timelapse(face_video, tmp_path_factory):
    """The face video as a time-lapse camera records it (a frame every 4 s), so that people walk through more than
    one period of the shortest length without a video of thousands of frames."""
    path = face_video.write(tmp_path_factory.mktemp("timelapse") / "door.mp4", fps=TIMELAPSE_FPS)
    return SimpleNamespace(**{**vars(face_video), "path": path, "fps": TIMELAPSE_FPS})


@pytest.fixture(scope="module")
def counted(timelapse, receiver_module, tmp_path_factory):
    project = tmp_path_factory.mktemp("privacy_counts")
    logged: list[str] = []
    face_video = timelapse
    summary = run(source=str(face_video.path), weights=face_video.model, privacy_level="counts", privacy_period=f"{PERIOD_S}s",
                  line=face_video.line, alert=["without_mask"], alert_after=0.3, alert_url=receiver_module.url,
                  project=project, quiet=True, log=logged.append)
    return summary, project, logged


@pytest.fixture(scope="module")
def receiver_module(face_video):
    r = monitoring.Receiver()
    yield r
    r.stop()


def truth(video) -> dict[int, Counter]:
    """People by verdict per period, by the frame each face first appears in."""
    out: dict[int, Counter] = {}
    for walk in video.walks:
        period = int(walk.frames[0] / video.fps // PERIOD_S)
        out.setdefault(period, Counter())[walk.label] += 1
    return out


def test_no_picture_of_any_kind_is_written(counted):
    summary, project, _ = counted
    files = written_files(project)
    names = sorted(p.relative_to(summary.save_dir).as_posix() for p in files)
    assert names == [MARKER, "alerts.jsonl", "counts.csv", "counts.json", "report.html"]
    for path in files:
        assert not looks_like_picture(path.read_bytes()), path


def test_no_row_is_about_one_person(counted, receiver_module):
    summary, _, logged = counted
    with open(summary.save_dir / "counts.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["source", "period", "start_s", "end_s", "people", "with_mask", "without_mask",
                                 "mask_weared_incorrect", "mask_share", "until"]
    data = json.loads((summary.save_dir / "counts.json").read_text(encoding="utf-8"))
    assert [r["people"] for r in data["periods"]] == [int(r["people"]) for r in rows]
    alerts = [json.loads(line) for line in (summary.save_dir / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert alerts, "the without_mask faces raise alerts"
    for record in alerts + receiver_module.received:
        assert not PERSON_KEYS & set(record), record
    assert all("#" not in line for line in logged if line.startswith("ALERT"))
    report = (summary.save_dir / "report.html").read_text(encoding="utf-8")
    assert "<img" not in report and "person-" not in report and "People (" not in report


def test_counts_per_period_match_the_faces_that_walked_through(counted, timelapse):
    summary, _, _ = counted
    face_video = timelapse
    with open(summary.save_dir / "counts.csv", newline="", encoding="utf-8") as f:
        rows = {int(r["period"]): r for r in csv.DictReader(f)}
    expected = truth(face_video)
    assert sorted(rows) == list(range(max(rows) + 1)) and max(rows) >= max(expected)  # every period, 0 people too
    for period, want in expected.items():
        row = rows.get(period, {})
        got = {name: int(row.get(name, 0)) for name in ("with_mask", "without_mask", "mask_weared_incorrect")}
        assert abs(sum(got.values()) - sum(want.values())) <= 1, (period, got, want)
        for name, n in got.items():
            assert abs(n - want.get(name, 0)) <= 1, (period, got, want)
    assert sum(int(r["people"]) for r in rows.values()) == len(face_video.walks)
    assert "privacy: counts (counts only: no image, no person)" in summary.lines()


@pytest.mark.parametrize("flag", ["save_csv", "save_json", "save_txt", "save_crop", "show"])
def test_flags_that_would_keep_a_person_are_refused(flag, tmp_path):
    with pytest.raises(UserError, match=f"--{flag.replace('_', '-')}"):
        run(source="nothing.jpg", privacy_level="counts", project=tmp_path, **{flag: True})


def test_a_period_nobody_walked_through_is_a_row_of_zeros_not_a_gap():
    from maskdet.privacy.counts import PeriodCounts

    counts = PeriodCounts(("with_mask", "without_mask", "mask_weared_incorrect"), period_s=2.0)
    assert counts.reach("door.mp4", 0.0) and not counts.reach("door.mp4", 1.9)
    counts.add("door.mp4", 0.5, "with_mask")
    assert counts.reach("door.mp4", 7.0)  # periods 1, 2 and 3 reached, nobody in 1 and 2
    counts.add("door.mp4", 6.5, "without_mask")
    assert [(r["period"], r["people"], r["mask_share"]) for r in counts.rows()] == \
        [(0, 1, 1.0), (1, 0, None), (2, 0, None), (3, 1, 0.0)]
