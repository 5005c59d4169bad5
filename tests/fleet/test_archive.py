"""monitor.py --archive: six recorded videos spread over two Ray workers; the run is killed (kill -9) halfway
and run again: every video is counted exactly once, on the video's own clock; and once more after the folder
is moved (a video is known by its content, not only its path). A video's camera is named by its folder (the
site) and its path inside it, so two sites' door.mp4 stay two cameras; another recording saved under a done
video's path is done again; a rerun reads only the videos that are new or changed. The runs write SQLite, the
default store (which videos are done is the store's own specification, on both backends, in test_store.py;
PostgreSQL runs in test_live.py and beside SQLite in the other fleet runs)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from datetime import datetime, timezone

import pytest

from maskdet.fleet.cameras import Camera, file_stat, video_fingerprint
from maskdet.fleet.runner import videos_to_do
from maskdet.fleet.store import DoneVideo, Store

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


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
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
    assert (f"videos: {len(VIDEOS) - done_first} done this run, {done_first} already done (skipped), "
            "0 could not be read (failed);") in second.stdout, second.stdout

    rows = kit.query(store_url.read_url, "SELECT camera, people, alerts, started FROM videos ORDER BY camera")
    assert [r[0] for r in rows] == [f"recordings/{name}" for name in sorted(VIDEOS)], rows  # site/path in the folder
    for camera_name, stored_people, stored_alerts, started in rows:
        name = camera_name.removeprefix("recordings/")
        people = kit.query(store_url.read_url, "SELECT verdict, first_seen, last_seen FROM people WHERE camera = ?",
                           (camera_name,))
        assert len(people) == stored_people, (name, people, stored_people)  # exactly once: nothing left from the cut run
        assert abs(len(people) - len(VIDEOS[name])) <= 1, (name, people)
        alerts = kit.query(store_url.read_url, "SELECT COUNT(*) FROM alerts WHERE camera = ?", (camera_name,))[0][0]
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
    assert f"videos: 0 done this run, {len(VIDEOS) + 1} already done (skipped), 0 could not be read (failed);" in third.stdout
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
        assert "recordings/a-short.mp4: done, 4 frames, 0 people, 0 alerts (1/3)" in run.stdout, run.stdout  # before the summary
        assert f"skipped: recordings/b-broken.mp4: {folder / 'b-broken.mp4'}: the video is corrupt" in run.stderr, run.stderr[-3000:]
        assert "(2/3)" in run.stderr
    finally:
        run.signal(signal.SIGINT)
    assert run.wait(timeout=120) == 130, run.stderr[-3000:]
    assert ("videos: 1 done this run, 0 already done (skipped), 1 could not be read (failed), 1 left for a rerun;"
            in run.stdout), run.stdout[-3000:]
    states = {c["name"]: c["state"] for c in read_summary(str(db))["cameras"]}  # what /api/fleet answers
    assert states == {"recordings/a-short.mp4": "done", "recordings/b-broken.mp4": "failed", "recordings/c-long.mp4": "stopped"}


def camera(name: str) -> Camera:
    return Camera(name, f"/recordings/{name}", "site", "")


def unknown_stat(path: str) -> str:
    return ""  # these videos are not on disk: what is known of them is their fingerprint


def test_a_video_done_before_is_known_by_its_path_or_by_its_content():
    done = {"/recordings/a.mp4": DoneVideo("100:aaa", ""), "/old/b.mp4": DoneVideo("200:bbb", ""),
            "/old/c.mp4": DoneVideo("", "")}  # c: done before fingerprints
    cameras = (camera("a.mp4"), camera("b.mp4"), camera("c.mp4"), camera("d.mp4"))
    fingerprints = {"/recordings/a.mp4": "100:aaa", "/recordings/b.mp4": "200:bbb", "/recordings/c.mp4": "300:ccc",
                    "/recordings/d.mp4": "400:ddd"}
    plan = videos_to_do(cameras, done, unknown_stat, fingerprints.get)
    assert [c.name for c in plan.todo] == ["c.mp4", "d.mp4"]  # c moved before fingerprints were kept: done again
    assert (plan.already_done, plan.moved, plan.twins, plan.replaced) == (2, 1, {}, [])


def test_a_second_copy_of_a_video_in_the_folder_is_done_once_and_an_unreadable_one_is_still_tried():
    cameras = (camera("a.mp4"), camera("copy/a.mp4"), camera("x.mp4"), camera("y.mp4"))
    fingerprints = {"/recordings/a.mp4": "100:aaa", "/recordings/copy/a.mp4": "100:aaa"}
    plan = videos_to_do(cameras, {}, unknown_stat, fingerprints.get)
    assert [c.name for c in plan.todo] == ["a.mp4", "x.mp4", "y.mp4"]  # unreadable: the worker says why, one by one
    assert (plan.moved, plan.twins) == (0, {"copy/a.mp4": "a.mp4"})


def test_a_rerun_reads_only_new_or_changed_videos_and_another_recording_under_a_done_path_is_done_again(tmp_path):
    """An archive rerun must not read 2 MiB of every video it knows: a video done whose size, modification and change
    times are as they were is done, unread. One whose file changed is read: the same content is still done (and its
    new stat kept, so the next rerun need not read it); another recording under the same path is done again."""
    recording = bytes(range(256)) * 12_000  # 3 MB
    paths = {name: tmp_path / name for name in ("door.mp4", "hall.mp4", "gate.mp4")}
    paths["door.mp4"].write_bytes(recording)
    paths["hall.mp4"].write_bytes(recording[::-1])
    paths["gate.mp4"].write_bytes(recording[1:] + b"\x01")
    cameras = tuple(Camera(f"siteA/{name}", str(path), "siteA") for name, path in paths.items())
    done = {str(paths[name]): DoneVideo(video_fingerprint(paths[name]), file_stat(paths[name])) for name in ("door.mp4", "hall.mp4")}
    reads: list[str] = []

    def fingerprint_of(path: str) -> str | None:
        reads.append(os.path.basename(path))
        return video_fingerprint(path)

    plan = videos_to_do(cameras, done, fingerprint_of=fingerprint_of)
    assert reads == ["gate.mp4"] and [c.name for c in plan.todo] == ["siteA/gate.mp4"]  # the two done: not read
    assert (plan.already_done, plan.replaced, plan.restat) == (2, [], {})

    # Another recording copied over door.mp4, of the same size, its modification time kept (cp -p): read, done again.
    kept = os.stat(paths["door.mp4"])
    paths["door.mp4"].write_bytes(recording[:-1] + b"\x00")
    os.utime(paths["door.mp4"], ns=(kept.st_atime_ns, kept.st_mtime_ns))
    # hall.mp4 touched: read, found the same, its new stat noted for the next rerun.
    os.utime(paths["hall.mp4"], ns=(kept.st_atime_ns + 10**9, kept.st_mtime_ns + 10**9))
    reads.clear()
    plan = videos_to_do(cameras, done, fingerprint_of=fingerprint_of)
    assert reads == ["door.mp4", "hall.mp4", "gate.mp4"]
    assert [c.name for c in plan.todo] == ["siteA/door.mp4", "siteA/gate.mp4"] and plan.replaced == ["siteA/door.mp4"]
    assert plan.already_done == 1 and plan.restat == {str(paths["hall.mp4"]): file_stat(paths["hall.mp4"])}
    assert plan.fingerprints["siteA/door.mp4"] == video_fingerprint(paths["door.mp4"]) != done[str(paths["door.mp4"])].fingerprint

    # A store from before file stats were kept: each done video is read once, found the same, and its stat noted.
    reads.clear()
    plan = videos_to_do(cameras[1:2], {str(paths["hall.mp4"]): DoneVideo(video_fingerprint(paths["hall.mp4"]), "")},
                        fingerprint_of=fingerprint_of)
    assert reads == ["hall.mp4"] and plan.todo == [] and plan.restat == {str(paths["hall.mp4"]): file_stat(paths["hall.mp4"])}


def test_two_sites_archives_stay_apart_and_a_new_recording_under_a_done_path_is_done_again(netns, fleet_kit, tmp_path):
    """siteA/door.mp4 and siteB/door.mp4 into one store: two cameras at their own sites, each with its own frames
    (named by the site folder and the path in it). Then another recording saved as siteA/door.mp4: the rerun does it,
    and its start line and its summary say the same of what was skipped and what was done."""
    kit = fleet_kit
    for site, name, seconds in (("siteA", "door.mp4", 2.0), ("siteA", "hall.mp4", 1.5), ("siteB", "door.mp4", 3.0)):
        (tmp_path / site).mkdir(exist_ok=True)
        kit.write_camera_video(tmp_path / site / name, {}, [], seconds, kit.background)
    db = tmp_path / "fleet.db"

    def archive(site: str):
        proc = netns.run([sys.executable, kit.root / "monitor.py", "--archive", tmp_path / site, "--workers", "1",
                          "--db", db], cwd=tmp_path, timeout=300)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc

    assert "videos: 2 done this run, 0 already done (skipped), 0 could not be read (failed);" in archive("siteA").stdout
    assert "videos: 1 done this run, 0 already done (skipped), 0 could not be read (failed);" in archive("siteB").stdout
    reader = Store.open(db, create=False)
    try:
        summary = reader.summary()
    finally:
        reader.close()
    assert [(c["name"], c["site"], c["frames"]) for c in summary["cameras"]] == [
        ("siteA/door.mp4", "siteA", 4), ("siteA/hall.mp4", "siteA", 3), ("siteB/door.mp4", "siteB", 6)]
    assert [(s["site"], s["cameras"]) for s in summary["sites"]] == [("siteA", 2), ("siteB", 1)]

    kit.write_camera_video(tmp_path / "other.mp4", {}, [], 2.5, kit.background)  # a recording never done
    shutil.copy(tmp_path / "other.mp4", tmp_path / "siteA" / "door.mp4")
    rerun = archive("siteA").stdout
    assert "1 of 2 videos already done (in the store): skipped" in rerun, rerun
    assert "siteA/door.mp4: not the recording done before under this path: done too" in rerun, rerun
    assert "siteA/door.mp4: done, 5 frames" in rerun, rerun
    assert "videos: 1 done this run, 1 already done (skipped), 0 could not be read (failed);" in rerun, rerun
    paths = [path for (path,) in fleet_kit.query(str(db), "SELECT path FROM videos ORDER BY path")]
    door = str((tmp_path / "siteA" / "door.mp4").resolve())
    assert len(paths) == 4 and door in paths and any(p.startswith(f"{door} (replaced at ") for p in paths), paths

    again = archive("siteA").stdout
    assert "2 of 2 videos already done (in the store): skipped" in again, again
    assert "videos: 0 done this run, 2 already done (skipped), 0 could not be read (failed);" in again, again


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
