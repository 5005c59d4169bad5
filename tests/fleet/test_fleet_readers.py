"""The fleet page (serve.py --db) reads the store and changes nothing: an SQLite store is opened read-only, so a
page with read access only can show it and a store kept in rollback-journal mode stays in that mode; a
PostgreSQL reader's session refuses any write."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from maskdet.fleet.cameras import Camera
from maskdet.fleet.store import Batch, Store, utc_text

ROOT = Path(__file__).resolve().parents[2]
READ = ("import sys; from maskdet.serving.fleet import read_summary; "
        "print(sorted(c['name'] for c in read_summary(sys.argv[1])['cameras']))")


def read_in_read_only_mount(db: Path) -> subprocess.CompletedProcess:
    """The fleet page's read, in a private mount namespace where the store's folder is mounted read-only: no write
    can reach the folder or the file (root included), as for a page given read access only."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    folder = str(db.parent)
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, folder, sys.executable, "-c", READ, str(db)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    if "unshare" in proc.stderr and proc.returncode != 0 and "Traceback" not in proc.stderr:
        pytest.skip(f"cannot make a private mount namespace here: {proc.stderr.strip()[:200]}")
    return proc


def make_store(db: Path, *names: str) -> None:
    store = Store.open(db)
    store.register_cameras([Camera(name, "rtsp://10.0.0.5/s", "north", "door") for name in names])
    store.close()


def test_a_read_changes_not_a_byte_of_a_store_in_rollback_journal_mode(tmp_path):
    from maskdet.serving.fleet import check_store, read_summary

    db = tmp_path / "fleet.db"
    make_store(db, "door")
    plain = sqlite3.connect(db)
    assert plain.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)  # as another tool may leave it
    plain.close()
    before = db.read_bytes()
    check_store(str(db))
    assert [c["name"] for c in read_summary(str(db))["cameras"]] == ["door"]
    assert db.read_bytes() == before  # the journal mode in its header included
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.db"]


def test_a_reader_with_read_access_only_reads_a_store_written_or_not(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "fleet.db"
    make_store(db, "door")  # a WAL store no writer has open: no -wal or -shm file beside it, none can be made
    proc = read_in_read_only_mount(db)
    assert proc.returncode == 0 and proc.stdout.strip() == "['door']", proc.stderr[-2000:]

    writer = Store.open(db, writer=True)  # monitor.py running: its -wal file holds what it wrote last
    try:
        writer.register_cameras([Camera("yard", "rtsp://10.0.0.6/s", "south", "yard")])
        writer.write(Batch([], [], {"yard": ("live", utc_text())}, {}))
        proc = read_in_read_only_mount(db)
        assert proc.returncode == 0 and proc.stdout.strip() == "['door', 'yard']", proc.stderr[-2000:]
    finally:
        writer.close()

    plain = sqlite3.connect(db)  # and a store in rollback-journal mode
    plain.execute("PRAGMA journal_mode=DELETE")
    plain.close()
    proc = read_in_read_only_mount(db)
    assert proc.returncode == 0 and proc.stdout.strip() == "['door', 'yard']", proc.stderr[-2000:]


def test_a_postgresql_reader_cannot_write(postgres):
    import psycopg

    url = postgres.socket_url
    store = Store.open(url)
    with store.transaction():
        store.execute("DELETE FROM cameras")
    store.register_cameras([Camera("door", "rtsp://10.0.0.5/s", "north", "door")])
    store.close()

    reader = Store.open(url, create=False)
    try:
        assert [c["name"] for c in reader.summary()["cameras"]] == ["door"]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.execute("DELETE FROM cameras")
        assert [c["name"] for c in reader.summary()["cameras"]] == ["door"]  # the refused write changed nothing
    finally:
        reader.close()
