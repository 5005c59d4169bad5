"""The store, SQLite and PostgreSQL alike: a person or an alert written twice (a retried batch, a rerun) is
stored once, the per-minute counts follow the people, and the summary the fleet page shows adds up."""

from __future__ import annotations

import time

import pytest

from maskdet.fleet.cameras import Camera
from maskdet.fleet.store import REPORT_SLACK_S, Batch, DoneVideo, Store, period_start, utc_text

PERIOD_S = 1200


def person(camera: str, track: str, verdict: str, site: str = "north", when: float | None = None) -> dict:
    seen = utc_text(when)
    return {"camera": camera, "track": track, "site": site, "zone": "door", "first_seen": seen, "last_seen": seen,
            "verdict": verdict, "frames": 8, "confidence": 0.8, "crossings": ""}


def alert(camera: str, track: str, site: str = "north") -> dict:
    return {"camera": camera, "track": track, "site": site, "zone": "door", "time": utc_text(), "verdict": "without_mask",
            "confidence": 0.7, "delivery": "queued"}


def period(camera: str, when: float, site: str = "north", **counted: int) -> dict:
    return {"camera": camera, "start": period_start(when, PERIOD_S), "period_s": PERIOD_S, "site": site, "zone": "door",
            **counted}


def test_the_same_person_and_alert_are_stored_once_and_counted_once(store_url):
    store = Store.open(store_url.read_url)
    try:
        store.register_cameras([Camera("door", "rtsp://user:secret@10.0.0.5/s", "north", "door"),
                                Camera("yard", "rtsp://10.0.0.6/s", "south", "yard")])
        batch = Batch([person("door", "a1-1", "with_mask"), person("door", "a1-2", "without_mask"),
                       person("yard", "a1-1", "without_mask", "south")],
                      [alert("door", "a1-2"), alert("yard", "a1-1", "south")],
                      {"door": ("live", utc_text()), "yard": ("down", "2026-12-05 10:00:00")}, {"door": (4, utc_text())})
        assert store.write(batch) == (3, 2)
        again = Batch(batch.people, batch.alerts, {}, {})  # the same results again (a retried batch, a rerun)
        assert store.write(again) == (0, 0)  # nothing new, nothing counted twice
        # a restarted worker's tracks carry its new incarnation: the same tracker id is another person
        assert store.write(Batch([person("door", "b7-1", "with_mask")], [], {}, {})) == (1, 0)
        store.set_delivery("door", "a1-2", "delivered")

        assert store.execute("SELECT COUNT(*) FROM people")[0][0] == 4
        assert store.execute("SELECT SUM(with_mask), SUM(without_mask) FROM counts") == [(2, 2)]
        assert store.execute("SELECT delivery FROM alerts WHERE camera = 'door'") == [("delivered",)]
        summary = store.summary()
        cameras = {c["name"]: c for c in summary["cameras"]}
        assert cameras["door"]["source"] == "rtsp://user:***@10.0.0.5/s"  # no password on the page
        assert (cameras["door"]["state"], cameras["door"]["people_last_hour"], cameras["door"]["compliance"]) == \
            ("live", 3, 2 / 3)
        assert (cameras["yard"]["state"], cameras["yard"]["state_since"]) == ("down", "2026-12-05 10:00:00")
        assert cameras["door"]["frames"] == 4
        sites = {s["site"]: s for s in summary["sites"]}
        assert (sites["north"]["people_last_hour"], sites["north"]["live"]) == (3, 1)
        assert (sites["south"]["people_last_hour"], sites["south"]["compliance"]) == (1, 0.0)
        assert [a["camera"] for a in summary["alerts"]] == sorted(a["camera"] for a in summary["alerts"])
        # People seen more than an hour ago are not in the last hour.
        store.write(Batch([person("yard", "a1-9", "with_mask", "south", time.time() - 7200)], [], {}, {}))
        assert {c["name"]: c["people_last_hour"] for c in store.summary()["cameras"]}["yard"] == 1
    finally:
        store.close()


def test_retention_deletes_old_people_alerts_counts_and_periods_and_keeps_the_rest(store_url):
    store = Store.open(store_url.read_url)
    try:
        store.register_cameras([Camera("door", "rtsp://10.0.0.5/s", "north", "door")])
        old = time.time() - 4 * 3600
        stale_alert = dict(alert("door", "a1-1"), time=utc_text(old))
        store.write(Batch([person("door", "a1-1", "without_mask", when=old), person("door", "a1-2", "with_mask")],
                          [stale_alert, alert("door", "a1-2")], {}, {}))
        store.write(Batch([], [], {}, {}, [period("door", old, with_mask=3), period("door", time.time(), without_mask=1)]))
        assert store.prune(3 * 3600) == {"people": 1, "alerts": 1, "counts": 1, "periods": 1}
        assert store.execute("SELECT track FROM people") == [("a1-2",)]
        assert store.execute("SELECT track FROM alerts") == [("a1-2",)]
        assert store.execute("SELECT SUM(with_mask), SUM(without_mask) FROM counts") == [(1, 0)]
        assert [c["name"] for c in store.summary()["cameras"]] == ["door"]  # the cameras stay
        assert store.execute("SELECT SUM(with_mask), SUM(without_mask) FROM periods") == [(0, 1)]
        assert store.prune(3 * 3600) == {"people": 0, "alerts": 0, "counts": 0, "periods": 0}
    finally:
        store.close()


def test_counts_only_periods_add_up_without_a_row_per_person_and_feed_the_summary(store_url):
    """privacy counts: a period's people arrive in several batches (people leave the view one by one) and add
    up in one row; the summary counts them like people; alerts keyed by an alert id show no track."""
    store = Store.open(store_url.read_url)
    try:
        store.register_cameras([Camera("door", "rtsp://10.0.0.5/s", "north", "door")])
        now = time.time()
        this = period_start(now, PERIOD_S)
        counts_alert = dict(alert("door", "alert-0123456789ab"))
        assert store.write(Batch([], [counts_alert], {}, {}, [period("door", now, with_mask=2)])) == (2, 1)
        assert store.write(Batch([], [], {}, {}, [period("door", now, without_mask=1), period("door", now - 7200, with_mask=5)])) == (6, 0)
        rows = store.execute("SELECT start, period_s, with_mask, without_mask, mask_weared_incorrect FROM periods ORDER BY start")
        assert rows[-1] == (this, PERIOD_S, 2, 1, 0) and len(rows) == 2, rows
        assert this.endswith(("00:00", "20:00", "40:00")), this  # aligned to 20 minutes in UTC
        assert store.execute("SELECT COUNT(*) FROM people")[0][0] == 0
        assert store.execute("SELECT COUNT(*) FROM counts")[0][0] == 0
        summary = store.summary(now=now)
        door = summary["cameras"][0]
        assert (door["people_last_hour"], door["masked_last_hour"]) == (3, 2)  # the period of two hours ago is not in it
        assert summary["periods"][0] == {"camera": "door", "site": "north", "zone": "door", "start": this, "period_s": PERIOD_S,
                                         "people": 3, "with_mask": 2, "without_mask": 1, "mask_weared_incorrect": 0,
                                         "compliance": 2 / 3}
        assert (summary["alerts"][0]["track"], summary["alerts"][0]["alert"]) == (None, "alert-0123456789ab")
    finally:
        store.close()


@pytest.mark.parametrize("source, shown", [
    ("rtsp://admin:topsecret@10.0.0.5:8554/s1?password=qpass&channel=1",
     "rtsp://admin:***@10.0.0.5:8554/s1?password=***&channel=1"),
    ("http://10.0.0.9/cgi/mjpg?user=cam&pwd=hunter2&Token=abc#view", "http://10.0.0.9/cgi/mjpg?user=cam&pwd=***&Token=***#view"),
    ("rtsp://viewer@10.0.0.6/live", "rtsp://viewer@10.0.0.6/live"),
    ("rtsp://admin:Summer@2026@127.0.0.1:1/stream1", "rtsp://admin:***@127.0.0.1:1/stream1"),  # '@' in the password
    ("rtsp://admin:p@ss:w@rd@10.0.0.5/live@2?channel=1", "rtsp://admin:***@10.0.0.5/live@2?channel=1"),
    ("0", "0"),
])
def test_a_camera_url_is_shown_without_its_password_wherever_the_password_is(source, shown):
    from maskdet.fleet.store import _display_source

    assert _display_source(source) == shown


BEFORE_FINGERPRINTS = """CREATE TABLE videos (path TEXT PRIMARY KEY, camera TEXT NOT NULL, started TEXT NOT NULL,
    frames INTEGER NOT NULL, people INTEGER NOT NULL, alerts INTEGER NOT NULL, done_at TEXT NOT NULL)"""


def test_a_store_from_before_video_fingerprints_is_read_as_it_is_and_given_them_by_its_next_writer(store_url):
    store = Store.open(store_url.read_url)
    with store.transaction():  # the videos table as monitor.py made it before it kept fingerprints
        store.execute("DROP TABLE videos")
        store.execute(BEFORE_FINGERPRINTS)
        store.execute("INSERT INTO videos VALUES ('/old/a.mp4', 'a.mp4', ?, 20, 1, 0, ?)", (utc_text(), utc_text()))
    store.close()

    reader = Store.open(store_url.read_url, create=False)  # the fleet page: opens it and changes nothing
    try:
        assert "fingerprint" not in reader.columns()["videos"]
        assert reader.summary()["cameras"] == []
    finally:
        reader.close()

    writer = Store.open(store_url.read_url)  # monitor.py's next run
    try:
        assert {"fingerprint", "file_stat"} <= writer.columns()["videos"]
        assert writer.videos_done() == {"/old/a.mp4": DoneVideo("", "")}  # known by its path only, as before
        writer.finish_video("/new/b.mp4", "1234:beef", "b.mp4", utc_text(), 10, Batch([], [], {}, {}), "1234:5:6")
        assert writer.videos_done() == {"/old/a.mp4": DoneVideo("", ""), "/new/b.mp4": DoneVideo("1234:beef", "1234:5:6")}
    finally:
        writer.close()


def test_a_store_from_before_the_alerts_and_periods_tables_is_summarised_with_none_not_an_error(store_url):
    store = Store.open(store_url.read_url)
    store.register_cameras([Camera("door", "rtsp://10.0.0.5/s", "north", "door")])
    store.write(Batch([person("door", "a1-1", "with_mask")], [], {}, {}))
    with store.transaction():  # as monitor.py made a store before it kept alerts and periods
        store.execute("DROP TABLE alerts")
        store.execute("DROP TABLE periods")
    store.close()

    reader = Store.open(store_url.read_url, create=False)  # the fleet page's read
    try:
        summary = reader.summary()
    finally:
        reader.close()
    assert (summary["alerts"], summary["periods"]) == ([], [])
    assert [(c["name"], c["people_last_hour"], c["compliance"]) for c in summary["cameras"]] == [("door", 1, 1.0)]


def test_a_camera_whose_run_stopped_reporting_it_is_shown_down_since_its_last_frame_not_live(store_url):
    """monitor.py killed with kill -9 leaves its cameras 'live' in the store: the summary judges them by their last
    frame (or, never having sent one, by their state's time) against their down_after, and never calls them live."""
    store = Store.open(store_url.read_url)
    try:
        store.register_cameras([Camera("door", "rtsp://10.0.0.5/s", "north", "door"),
                                Camera("hall", "rtsp://10.0.0.6/s", "north", "hall"),
                                Camera("gate", "rtsp://10.0.0.7/s", "north", "gate"),
                                Camera("yard", "rtsp://10.0.0.8/s", "north", "yard")],
                               {"door": 10, "hall": 10, "gate": 10, "yard": 10})
        t0 = float(int(time.time()))
        store.write(Batch([], [], {"door": ("live", utc_text(t0 - 300)), "hall": ("reconnecting", utc_text(t0 - 4)),
                                   "gate": ("connecting", utc_text(t0)), "yard": ("stopped", utc_text(t0 - 3600))},
                          {"door": (50, utc_text(t0)), "hall": (9, utc_text(t0 - 4))}))

        def shown(now: float) -> dict[str, tuple]:
            summary = store.summary(now=now)
            assert summary["sites"][0]["live"] == sum(c["state"] == "live" for c in summary["cameras"])
            return {c["name"]: (c["state"], c["state_since"], c["stale"]) for c in summary["cameras"]}

        assert shown(t0 + 2) == {"door": ("live", utc_text(t0 - 300), False), "hall": ("reconnecting", utc_text(t0 - 4), False),
                                 "gate": ("connecting", utc_text(t0), False), "yard": ("stopped", utc_text(t0 - 3600), False)}
        later = t0 + 10 + REPORT_SLACK_S + 1  # past down_after (and the slack for the driver's batches) since the last frame
        assert shown(later) == {"door": ("down", utc_text(t0), True), "hall": ("down", utc_text(t0 - 4), True),
                                "gate": ("down", utc_text(t0), True), "yard": ("stopped", utc_text(t0 - 3600), False)}
        door = next(c for c in store.summary(now=later)["cameras"] if c["name"] == "door")
        assert door["last_frame_at"] == utc_text(t0)  # shown, so the page can say when it was last heard of

        with store.transaction():  # a store from before down_after was kept: the fleet's default, 30 s
            store.execute("ALTER TABLE cameras DROP COLUMN down_after")
        assert shown(t0 + 30)["door"][0] == "live"
        assert shown(t0 + 30 + REPORT_SLACK_S + 1)["door"] == ("down", utc_text(t0), True)
    finally:
        store.close()


def test_another_recording_under_a_done_videos_path_is_stored_and_the_first_ones_row_is_kept(store_url):
    store = Store.open(store_url.read_url)
    try:
        def people(track: str) -> Batch:
            return Batch([person("siteA/door.mp4", track, "with_mask")], [], {}, {})

        store.finish_video("/rec/siteA/door.mp4", "100:aaa", "siteA/door.mp4", utc_text(), 10, people("a-1"), "100:1:1")
        store.finish_video("/rec/siteA/door.mp4", "200:bbb", "siteA/door.mp4", utc_text(), 20, people("b-1"), "200:2:2")
        done = store.videos_done()
        assert done["/rec/siteA/door.mp4"] == DoneVideo("200:bbb", "200:2:2")
        (replaced,) = set(done) - {"/rec/siteA/door.mp4"}
        assert replaced.startswith("/rec/siteA/door.mp4 (replaced at ") and done[replaced] == DoneVideo("100:aaa", "100:1:1")
        assert sorted(t for (t,) in store.execute("SELECT track FROM people")) == ["a-1", "b-1"]  # nothing of the first lost
        store.set_file_stats({"/rec/siteA/door.mp4": "200:3:3"})  # touched since: the same content, a new stat
        assert store.videos_done()["/rec/siteA/door.mp4"] == DoneVideo("200:bbb", "200:3:3")
    finally:
        store.close()
