"""--db is monitor.py's store or nothing: another program's database, a text file, a folder or a URL of another
scheme is refused at start in one line naming it (exit 2) and left as it was; a new path becomes a new store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from maskdet.errors import UserError
from maskdet.fleet.store import Store

ROOT = Path(__file__).resolve().parents[2]


def monitor(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "monitor.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def other_program_database(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO people (name) VALUES ('Ada')")
    db.commit()
    db.close()
    return path


def test_another_programs_database_or_a_text_file_is_refused_and_left_as_it_was(tmp_path):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n", encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n", encoding="utf-8")
    for db, why in ((other_program_database(tmp_path / "crm.db"), "it has no cameras table (it has people)"),
                    (notes, "not an SQLite database"),
                    (tmp_path, "a folder")):
        before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
        proc = monitor(cameras, "--db", db, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert proc.stderr.strip().splitlines()[0].startswith(f"error: {db}: not a monitor.py store: {why}"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == "", proc.stderr
        assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # not a byte changed, nothing added


def test_a_url_of_another_scheme_is_refused_naming_what_db_takes(tmp_path):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n", encoding="utf-8")
    proc = monitor(cameras, "--db", "mysql://x/y", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        "error: mysql://x/y: --db takes an SQLite file (a path) or a PostgreSQL URL (postgresql://user@host/dbname "
        "or postgres://...), not a mysql:// URL"]
    assert not (tmp_path / "mysql:").exists()  # no local SQLite file named after the URL


def test_a_new_path_or_an_empty_file_becomes_a_new_store_and_a_reader_refuses_what_is_not_one(tmp_path):
    for path in (tmp_path / "new.db", tmp_path / "empty.db"):
        if path.name == "empty.db":
            path.touch()
        Store.open(path).close()
        assert Store.open(path, create=False).summary()["cameras"] == []
    (tmp_path / "blank.db").touch()
    with pytest.raises(UserError, match=r"blank.db: not a monitor.py store: it has no tables"):
        Store.open(tmp_path / "blank.db", create=False)
    with pytest.raises(UserError, match=r"crm.db: not a monitor.py store"):
        Store.open(other_program_database(tmp_path / "crm.db"), create=False)


def test_a_store_with_a_table_of_another_shape_is_refused(tmp_path):
    path = tmp_path / "fleet.db"
    Store.open(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE people")
    db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(UserError, match="its people table has no camera, confidence, crossings"):
        Store.open(path)
