"""The driver's alerts: each goes to the webhook once, from a background queue with retries, carrying camera,
site and zone, and its delivery status lands in the store (the driver is the store's only writer)."""

from __future__ import annotations

import time

from maskdet.fleet.runner import Alerts, Totals, Writer
from maskdet.fleet.store import Store, utc_text


def result(camera: str, site: str, zone: str, tracks: list[str]) -> dict:
    alerts = [{"camera": camera, "track": t, "site": site, "zone": zone, "time": utc_text(), "verdict": "without_mask",
               "confidence": 0.7} for t in tracks]
    return {"camera": camera, "state": "live", "processed": 1, "last_frame_at": utc_text(), "people": [], "alerts": alerts,
            "notes": []}


def test_alerts_reach_the_webhook_with_camera_site_and_zone_and_their_delivery_is_stored(monitoring_kit, fleet_kit, tmp_path):
    receiver = monitoring_kit.Receiver(refuse=1)  # the first POST gets a 503: retried
    store = Store.open(tmp_path / "fleet.db")
    try:
        alerts = Alerts(receiver.url)
        lines: list[str] = []
        writer = Writer(store, alerts, Totals(), lines.append)
        writer.add(result("door", "north", "entrance", ["a-1", "a-2"]))
        writer.add(result("yard", "south", "gate", ["b-1"]))
        writer.flush(force=True)

        def delivered() -> bool:
            writer.flush(force=True)
            return [d for (d,) in store.execute("SELECT delivery FROM alerts")] == ["delivered"] * 3

        fleet_kit.wait_for(delivered, 30, message="every alert delivered")
        alerts.close()
        got = sorted((r["camera"], r["site"], r["zone"], r["track"]) for r in receiver.received)
        assert got == [("door", "north", "entrance", "a-1"), ("door", "north", "entrance", "a-2"),
                       ("yard", "south", "gate", "b-1")], receiver.received
        assert receiver.attempts == 4  # one refused and tried again
        assert sum(line.startswith("ALERT ") for line in lines) == 3
    finally:
        receiver.stop()
        store.close()


def test_a_dead_webhook_leaves_the_alerts_stored_as_undelivered(fleet_kit, detect_kit, tmp_path):
    store = Store.open(tmp_path / "fleet.db")
    try:
        alerts = Alerts(f"http://127.0.0.1:{detect_kit.free_port()}/hook")  # nothing listens there
        alerts.sender.attempts, alerts.sender.backoff_s = 2, 0.05
        writer = Writer(store, alerts, Totals(), lambda line: None)
        writer.add(result("door", "north", "entrance", ["a-1"]))
        writer.flush(force=True)
        started = time.monotonic()
        alerts.close()
        writer.flush(force=True)
        assert time.monotonic() - started < 10
        (status,) = store.execute("SELECT delivery FROM alerts")[0]
        assert status.startswith("undelivered: 2 attempts failed"), status
    finally:
        store.close()


def test_with_privacy_counts_an_alert_names_no_track_and_periods_are_stored_as_they_come(monitoring_kit, fleet_kit, tmp_path):
    """privacy counts: the worker keys an alert by a random alert id; the webhook gets it as "alert" (no
    "track"), the printed line names nobody, its delivery still lands in the store; periods add up."""
    receiver = monitoring_kit.Receiver()
    store = Store.open(tmp_path / "fleet.db")
    try:
        alerts = Alerts(receiver.url)
        lines: list[str] = []
        writer = Writer(store, alerts, Totals(), lines.append)
        periods = [{"camera": "door", "start": "2026-12-06 10:20:00", "period_s": 1200, "site": "north", "zone": "entrance",
                    "with_mask": 2, "without_mask": 1}]
        writer.add({**result("door", "north", "entrance", ["alert-0123456789ab"]), "periods": periods})
        writer.add({**result("door", "north", "entrance", []), "periods": [{**periods[0], "with_mask": 1, "without_mask": 0}]})
        writer.flush(force=True)

        def delivered() -> bool:
            writer.flush(force=True)
            return store.execute("SELECT delivery FROM alerts") == [("delivered",)]

        fleet_kit.wait_for(delivered, 30, message="the alert delivered")
        alerts.close()
        (sent,) = receiver.received
        assert "track" not in sent and sent["alert"] == "alert-0123456789ab", sent
        assert (sent["camera"], sent["site"], sent["zone"], sent["verdict"]) == ("door", "north", "entrance", "without_mask")
        assert [line for line in lines if line.startswith("ALERT")] == ["ALERT door (north/entrance): without_mask"]
        assert store.execute("SELECT with_mask, without_mask FROM periods") == [(3, 1)]
        assert store.execute("SELECT COUNT(*) FROM people") == [(0,)]
    finally:
        receiver.stop()
        store.close()
