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


def test_a_db_that_is_not_a_store_is_refused_at_start_and_answered_in_one_line(make_client, tmp_path):
    """serve.py --db checks the store at start (check_store: one line, exit 2 from the CLI); a store replaced under a
    running server is a 503 that says what is wrong, not a 500."""
    import sqlite3

    import pytest

    from maskdet.errors import UserError
    from maskdet.serving.fleet import check_store

    notes = tmp_path / "notes.txt"
    notes.write_text("shopping: masks\n", encoding="utf-8")
    crm = tmp_path / "crm.db"
    db = sqlite3.connect(crm)
    db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
    db.commit()
    db.close()
    for path, why in ((notes, "not an SQLite database"), (crm, "it has no cameras table (it has people)")):
        with pytest.raises(UserError) as refused:
            check_store(str(path))
        assert str(refused.value) == f"{path}: not a monitor.py store: {why}"
        answer = make_client(fleet_db=str(path)).get("/api/fleet")
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == f"the fleet store cannot be read: {path}: not a monitor.py store: {why}"
    with pytest.raises(UserError, match="--db takes an SQLite file"):
        check_store("mysql://x/y")
    store = tmp_path / "fleet.db"
    Store.open(store).close()
    check_store(str(store))  # a store monitor.py made passes
