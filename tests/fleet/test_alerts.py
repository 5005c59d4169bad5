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
