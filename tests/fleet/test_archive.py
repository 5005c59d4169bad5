"""monitor.py --archive: six recorded videos spread over two Ray workers; the run is killed (kill -9) halfway
and run again: every video is counted exactly once, on the video's own clock; and once more after the folder
is moved (a video is known by its content, not only its path)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from datetime import datetime, timezone

from maskdet.fleet.cameras import Camera, video_fingerprint
from maskdet.fleet.runner import videos_to_do

SECONDS = 10.0
VIDEOS = {  # name: the faces in it, one after the other at two places
    "gate-0800.mp4": ["with_mask0", "without_mask0"],
    "gate-0900.mp4": ["without_mask1"],
    "gate-1000.mp4": ["with_mask1", "with_mask0"],
    "dock-0800.mp4": ["without_mask0", "with_mask1"],
    "dock-0900.mp4": ["with_mask0"],
    "dock-1000.mp4": ["without_mask1", "without_mask0"],
}
PLACES = [((70, 80), (110, 95)), ((240, 165), (205, 150))]
RECORDED_AT = datetime(2026, 12, 1, 8, 0, 10, tzinfo=timezone.utc).timestamp()  # when the recorder closed each file


def test_an_archive_killed_halfway_and_run_again_counts_every_video_once(store_url, netns, faces, fleet_kit, tmp_path):
    kit = fleet_kit
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name, people in VIDEOS.items():
        visits = [kit.Visit(face, 1 + i * 0.5, 8 + i * 0.5, *PLACES[i]) for i, face in enumerate(people)]
        path = kit.write_camera_video(folder / name, faces, visits, SECONDS, kit.background)
        os.utime(path, (RECORDED_AT, RECORDED_AT))
    defaults = tmp_path / "defaults.yaml"  # the archive takes the defaults of a cameras file
    defaults.write_text("defaults:\n  fps: 2\n  min_frames: 3\n  alert: [without_mask]\n  alert_after: 1\n", encoding="utf-8")
    argv = netns.argv([sys.executable, kit.root / "monitor.py", defaults, "--archive", folder, "--workers", "2",
                       "--db", store_url.url])

    def done() -> int:
        try:
            return kit.query(store_url.read_url, "SELECT COUNT(*) FROM videos")[0][0]
        except Exception:  # the store is not made yet
            return 0

    # First run: killed with SIGKILL (no chance to clean up) once some videos are done, before all are.
    first = kit.Background(argv, tmp_path / "logs", "first")
    kit.wait_for(lambda: done() >= 2 or not first.running(), 300, interval=0.05, message="two videos done")
    first.signal(signal.SIGKILL)
    first.wait(timeout=30)
    for pid in netns.members(uid=0):  # the crashed run's local Ray goes with it, as on a machine that went down
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    done_first = done()
    assert 2 <= done_first < len(VIDEOS), f"the kill came too late to test a restart: {done_first} of {len(VIDEOS)} done"

    # Second run: skips what is done, redoes the video that was cut, does the rest.
    second = kit.Background(argv, tmp_path / "logs", "second")
    assert second.wait(timeout=400) == 0, second.stderr[-3000:]
    assert "Traceback" not in second.stderr, second.stderr[-3000:]
    assert f"{done_first} of {len(VIDEOS)} videos already done (in the store): skipped" in second.stdout, second.stdout
    assert f"videos: {len(VIDEOS) - done_first} done this run" in second.stdout, second.stdout

    rows = kit.query(store_url.read_url, "SELECT camera, people, alerts, started FROM videos ORDER BY camera")
    assert [r[0] for r in rows] == sorted(VIDEOS), rows
    for name, stored_people, stored_alerts, started in rows:
        people = kit.query(store_url.read_url, "SELECT verdict, first_seen, last_seen FROM people WHERE camera = ?", (name,))
        assert len(people) == stored_people, (name, people, stored_people)  # exactly once: nothing left from the cut run
        assert abs(len(people) - len(VIDEOS[name])) <= 1, (name, people)
        alerts = kit.query(store_url.read_url, "SELECT COUNT(*) FROM alerts WHERE camera = ?", (name,))[0][0]
        unmasked = sum(face.startswith("without_mask") for face in VIDEOS[name])
        assert alerts == stored_alerts == unmasked, (name, alerts, stored_alerts, unmasked)
        # The video's own clock: it started SECONDS before its file was closed.
        assert started == "2026-12-01 08:00:00", started
        assert all("2026-12-01 08:00:00" <= first_seen <= last_seen <= "2026-12-01 08:00:10" for _, first_seen, last_seen in people)
    assert kit.query(store_url.read_url, "SELECT COUNT(*) FROM people")[0][0] == sum(r[1] for r in rows)

    # Third run: the folder moved (and a copy of one video made in it): nothing is done or counted again.
    people_before = kit.query(store_url.read_url, "SELECT COUNT(*) FROM people")[0][0]
    (tmp_path / "moved").mkdir()
    moved = folder.rename(tmp_path / "moved" / "recordings")
    shutil.copy(moved / "gate-0800.mp4", moved / "gate-0800-copy.mp4")
    third = kit.Background([str(moved) if arg == str(folder) else arg for arg in argv], tmp_path / "logs", "third")
    assert third.wait(timeout=400) == 0, third.stderr[-3000:]
    assert (f"{len(VIDEOS) + 1} of {len(VIDEOS) + 1} videos already done (in the store): skipped, "
            f"{len(VIDEOS) + 1} of them done where they were before (moved or copied since)") in third.stdout, third.stdout
    assert "videos: 0 done this run, 0 skipped" in third.stdout, third.stdout
    assert kit.query(store_url.read_url, "SELECT COUNT(*) FROM people")[0][0] == people_before
    assert kit.query(store_url.read_url, "SELECT COUNT(*) FROM videos")[0][0] == len(VIDEOS)


def test_each_video_is_reported_as_it_ends_and_ends_done_failed_or_stopped(netns, fleet_kit, tmp_path):
    """A line per video as it ends; on the fleet page a video that cannot be read is 'failed' (not 'starting' for
    ever), and one cut by Ctrl-C is 'stopped' (a rerun does it)."""
    from maskdet.serving.fleet import read_summary

    kit = fleet_kit
    folder = tmp_path / "recordings"
    folder.mkdir()
    kit.write_camera_video(folder / "a-short.mp4", {}, [], 2.0, kit.background)
    (folder / "b-broken.mp4").write_bytes(b"not a video at all\n" * 100)
    kit.write_camera_video(folder / "c-long.mp4", {}, [], 300.0, kit.background)  # still running at Ctrl-C
    db = tmp_path / "fleet.db"
    run = kit.Background(netns.argv([sys.executable, kit.root / "monitor.py", "--archive", folder, "--workers", "1",
                                     "--db", db]), tmp_path / "logs", "archive")
    try:
        kit.wait_for(lambda: "b-broken.mp4" in run.stderr or not run.running(), 300, message="the broken video to be skipped")
        assert run.running(), run.stderr[-3000:]
        assert "a-short.mp4: done, 4 frames, 0 people, 0 alerts (1/3)" in run.stdout, run.stdout  # before the summary
        assert f"skipped: b-broken.mp4: {folder / 'b-broken.mp4'}: the video is corrupt" in run.stderr, run.stderr[-3000:]
        assert "(2/3)" in run.stderr
    finally:
        run.signal(signal.SIGINT)
    assert run.wait(timeout=120) == 130, run.stderr[-3000:]
    states = {c["name"]: c["state"] for c in read_summary(str(db))["cameras"]}  # what /api/fleet answers
    assert states == {"a-short.mp4": "done", "b-broken.mp4": "failed", "c-long.mp4": "stopped"}


def camera(name: str) -> Camera:
    return Camera(name, f"/recordings/{name}", "site", "")


def test_a_video_done_before_is_known_by_its_path_or_by_its_content():
    done = {"/recordings/a.mp4": "100:aaa", "/old/b.mp4": "200:bbb", "/old/c.mp4": ""}  # c: done before fingerprints
    cameras = (camera("a.mp4"), camera("b.mp4"), camera("c.mp4"), camera("d.mp4"))
    fingerprints = {"a.mp4": "100:aaa", "b.mp4": "200:bbb", "c.mp4": "300:ccc", "d.mp4": "400:ddd"}
    todo, moved, twins = videos_to_do(cameras, fingerprints, done)
    assert [c.name for c in todo] == ["c.mp4", "d.mp4"]  # c moved before fingerprints were kept: done again
    assert (moved, twins) == (1, {})


def test_a_second_copy_of_a_video_in_the_folder_is_done_once_and_an_unreadable_one_is_still_tried():
    cameras = (camera("a.mp4"), camera("copy/a.mp4"), camera("x.mp4"), camera("y.mp4"))
    fingerprints = {"a.mp4": "100:aaa", "copy/a.mp4": "100:aaa", "x.mp4": "", "y.mp4": ""}
    todo, moved, twins = videos_to_do(cameras, fingerprints, {})
    assert [c.name for c in todo] == ["a.mp4", "x.mp4", "y.mp4"]  # unreadable: the worker says why, one by one
    assert (moved, twins) == (0, {"copy/a.mp4": "a.mp4"})


def test_a_fingerprint_is_the_same_for_a_copy_and_differs_between_recordings(tmp_path):
    recording = bytes(range(256)) * 12_000  # 3 MB: a head, a middle and a tail
    (tmp_path / "a.mp4").write_bytes(recording)
    shutil.copy(tmp_path / "a.mp4", tmp_path / "copy.mp4")
    (tmp_path / "other-end.mp4").write_bytes(recording[:-1] + b"\x00")
    (tmp_path / "longer.mp4").write_bytes(recording + recording[-10:])
    (tmp_path / "short.mp4").write_bytes(b"tiny")
    fingerprint = video_fingerprint(tmp_path / "a.mp4")
    assert fingerprint == video_fingerprint(tmp_path / "copy.mp4")
    assert fingerprint.startswith(f"{len(recording)}:")
    others = [video_fingerprint(tmp_path / name) for name in ("other-end.mp4", "longer.mp4", "short.mp4")]
    assert len({fingerprint, *others}) == 4
    assert video_fingerprint(tmp_path / "missing.mp4") is None
