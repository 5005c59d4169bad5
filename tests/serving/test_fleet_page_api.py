"""serve.py --db: /api/fleet reads monitor.py's store; /fleet is the page that shows it (tests/fleet/test_live.py
drives that page in Chromium against a running fleet)."""

from __future__ import annotations

from maskdet.fleet.cameras import Camera
from maskdet.fleet.store import Batch, Store, utc_text


def test_the_fleet_api_reads_the_store_and_keeps_the_token(make_client, tmp_path):
    db = tmp_path / "fleet.db"
    store = Store.open(db)
    store.register_cameras([Camera("door", "rtsp://10.0.0.5/s", "north", "door")])
    seen = utc_text()
    store.write(Batch([{"camera": "door", "track": "x-1", "site": "north", "zone": "door", "first_seen": seen,
                        "last_seen": seen, "verdict": "with_mask", "frames": 5, "confidence": 0.9}], [],
                      {"door": ("live", seen)}, {}))
    store.close()

    assert make_client().get("/api/fleet").status_code == 404  # no --db: says how to get one
    client = make_client(fleet_db=str(db), token="s3cret")
    assert client.get("/api/fleet").status_code == 401
    data = client.get("/api/fleet", headers={"Authorization": "Bearer s3cret"}).json()
    assert [(c["name"], c["state"], c["people_last_hour"], c["compliance"]) for c in data["cameras"]] == \
        [("door", "live", 1, 1.0)]
    assert data["sites"][0]["site"] == "north"
    assert data["periods"] == []  # no camera counts only
    page = client.get("/fleet")
    assert page.status_code == 200 and "/api/fleet" in page.text and "setInterval" in page.text

    db.unlink()
    missing = client.get("/api/fleet", headers={"Authorization": "Bearer s3cret"})
    assert missing.status_code == 503 and "cannot be read" in missing.json()["error"]
