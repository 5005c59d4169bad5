"""monitor.py with privacy counts (decree 2021-269): two recorded videos of known people across two periods
each (periods of 2 minutes, the shortest there is; the videos were recorded across a boundary). The store then
holds people by verdict per camera and period, within one person of the truth, and nothing per person: every
table is read, no people or per-minute rows exist, no alert names a track, and the run writes no file of any
kind beside the store in its folders. The fleet page shows the periods and no person, from either store."""

from __future__ import annotations

import os
import sys
from collections import Counter
from datetime import datetime, timezone

from maskdet.fleet.store import period_start

SECONDS = 30.0
PERIOD_S = 120
A, B = ((70, 80), (110, 95)), ((240, 165), (205, 150))
VIDEOS = {  # name: (face, seconds in view, where); each face first seen in the period of its t0
    "door.mp4": [("with_mask0", 1, 8, A), ("without_mask0", 11, 18, B), ("with_mask1", 11.5, 18.5, A),
                 ("without_mask1", 21, 28, B)],
    "yard.mp4": [("without_mask1", 1, 8, A), ("with_mask0", 1.5, 8.5, B), ("with_mask1", 21, 28, A)],
}
STARTED = datetime(2026, 12, 1, 8, 1, 50, tzinfo=timezone.utc)  # 10 s before the period of 08:02 begins


def camera(name: str) -> str:
    """The camera an archive video is: its folder (the site) and its name."""
    return f"recordings/{name}"


def truth() -> dict[tuple[str, str], Counter]:
    out: dict[tuple[str, str], Counter] = {}
    for name, visits in VIDEOS.items():
        for face, t0, _, _ in visits:  # 08:00:00 for the faces first seen in the first 10 s, 08:02:00 for the others
            start = period_start(STARTED.timestamp() + t0, PERIOD_S)
            out.setdefault((camera(name), start), Counter())[face.rstrip("0123456789")] += 1
    return out


def files_under(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_counts_only_stores_people_per_period_and_nothing_per_person(store_url, netns, faces, fleet_kit, detect_kit, tmp_path):
    kit = fleet_kit
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name, visits in VIDEOS.items():
        path = kit.write_camera_video(folder / name, faces, [kit.Visit(f, t0, t1, *where) for f, t0, t1, where in visits],
                                      SECONDS, kit.background)
        closed = STARTED.timestamp() + SECONDS  # the recorder closed the file when the video ended
        os.utime(path, (closed, closed))
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("defaults:\n  fps: 2\n  min_frames: 3\n  alert: [without_mask]\n  alert_after: 1\n  privacy: counts\n",
                        encoding="utf-8")
    work = tmp_path / "work"  # the run's own folder: the store (SQLite) and nothing else may appear here
    work.mkdir()
    before = files_under(tmp_path)
    db = store_url.url if store_url.kind == "postgresql" else str(work / "fleet.db")
    read = store_url.read_url if store_url.kind == "postgresql" else db
    run = kit.Background(netns.argv([sys.executable, kit.root / "monitor.py", defaults, "--archive", folder, "--workers", "2",
                                     "--period", f"{PERIOD_S}s", "--db", db]), tmp_path / "logs", "counts", cwd=work)
    assert run.wait(timeout=400) == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "counted per period (privacy counts: no row per person)" in run.stdout, run.stdout

    # Every table, read whole: nothing per person.
    assert kit.query(read, "SELECT * FROM people") == []
    assert kit.query(read, "SELECT * FROM counts") == []  # a per-minute row with one person in it is that person
    alerts = kit.query(read, "SELECT camera, track, verdict FROM alerts")
    assert sorted((cam, verdict) for cam, _, verdict in alerts) == \
        sorted((camera(name), "without_mask") for name, visits in VIDEOS.items() for face, *_ in visits
               if face.startswith("without"))
    assert all(track.startswith("alert-") and len(track) == len("alert-") + 12 for _, track, _ in alerts), alerts
    assert len({track for _, track, _ in alerts}) == len(alerts)
    videos = kit.query(read, "SELECT camera, people FROM videos ORDER BY camera")
    assert [v[0] for v in videos] == [camera(name) for name in sorted(VIDEOS)]
    cameras = kit.query(read, "SELECT name, state FROM cameras ORDER BY name")
    assert cameras == [(camera(name), "done") for name in sorted(VIDEOS)]

    # The periods: within one person of the truth, per camera and period, by verdict.
    rows = kit.query(read, "SELECT camera, start, period_s, with_mask, without_mask, mask_weared_incorrect FROM periods")
    stored = {(cam, start): Counter(with_mask=w, without_mask=wo, mask_weared_incorrect=i)
              for cam, start, period_s, w, wo, i in rows if period_s == PERIOD_S}
    assert len(stored) == len(rows), rows
    expected = truth()
    assert all(sum(stored[key].values()) <= 1 for key in set(stored) - set(expected)), rows  # a stray period: one person at most
    for key, want in expected.items():
        got = stored.get(key, Counter())
        assert abs(sum(got.values()) - sum(want.values())) <= 1, (key, got, want)
        assert abs(got["without_mask"] - want["without_mask"]) <= 1, (key, got, want)
    for name, people in videos:
        assert people == sum(sum(c.values()) for (cam, _), c in stored.items() if cam == name), (name, people, rows)
        assert abs(people - len(VIDEOS[name.removeprefix("recordings/")])) <= 1, (name, people)

    # No file of any kind beside the store (the SQLite file and its journal), in the run's folder or anywhere
    # under the test's folder (the logs are the test's own).
    made = files_under(tmp_path) - before
    allowed = {"work/fleet.db", "work/fleet.db-wal", "work/fleet.db-shm"} if store_url.kind == "sqlite" else set()
    assert {f for f in made if not f.startswith("logs/")} <= allowed, made

    # The fleet page shows the periods (and no person), read from the same store.
    from selenium.webdriver.support.ui import WebDriverWait

    page = kit.FleetPage(read, kit, detect_kit, tmp_path)
    try:
        WebDriverWait(page.driver, 20, 0.3).until(lambda d: page.snapshot()["periods"])
        shown = page.snapshot()["periods"]
        assert len(shown) == len(rows), shown
        by_camera = Counter()
        for cam, period, _name, _site, _zone, people, *_ in shown:
            assert period.split(" +")[0] in ("2026-12-01 08:00:00", "2026-12-01 08:02:00"), period
            assert period.endswith(f" +{PERIOD_S // 60} min"), period
            by_camera[cam] += int(people)
        assert by_camera == Counter({name: people for name, people in videos}), shown
        path = tmp_path / "artefacts" / "fleet-counts.png"
        path.parent.mkdir(exist_ok=True)
        page.driver.save_screenshot(str(path))
    finally:
        page.close()
