"""The fleet's one store: an SQLite file, or PostgreSQL for a fleet across machines.

One schema and one set of statements for both (portable SQL: `ON CONFLICT`, text timestamps). Times are
UTC text 'YYYY-MM-DD HH:MM:SS', so they sort and group by prefix the same way in both databases
(`substr(first_seen, 1, 13)` is the hour). Only the monitor's driver writes, in one transaction per
batch: a reader (the fleet page) never sees half a batch, and a kill -9 loses at most the batch in hand.

A person and an alert are keyed by (camera, track): the track id carries the worker's incarnation, so a
worker restarted by Ray never reuses an id, and the same alert written twice is stored once.

With `privacy: counts` (decree 2021-269) nothing per person is stored: no `people` row, no per-minute
`counts` row (a minute with one person in it is that person), only `periods` rows -- people by verdict
per camera and period -- and alerts keyed by a random alert id ("alert-..."), never a track.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from maskdet.errors import UserError

VERDICTS = ("with_mask", "without_mask", "mask_weared_incorrect")

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS cameras (
        name TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        site TEXT NOT NULL DEFAULT '',
        zone TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'starting',     -- live, reconnecting, down, stopped, done, failed
        state_since TEXT NOT NULL,
        last_frame_at TEXT,
        frames BIGINT NOT NULL DEFAULT 0,
        worker TEXT NOT NULL DEFAULT '',
        down_after REAL NOT NULL DEFAULT 0)""",     # seconds without a frame before it is down (0: not known)
    """CREATE TABLE IF NOT EXISTS people (
        camera TEXT NOT NULL,
        track TEXT NOT NULL,                        -- worker incarnation + tracker id: never reused
        site TEXT NOT NULL DEFAULT '',
        zone TEXT NOT NULL DEFAULT '',
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        verdict TEXT NOT NULL,
        frames INTEGER NOT NULL,
        confidence REAL NOT NULL,
        crossings TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (camera, track))""",
    """CREATE TABLE IF NOT EXISTS alerts (
        camera TEXT NOT NULL,
        track TEXT NOT NULL,
        site TEXT NOT NULL DEFAULT '',
        zone TEXT NOT NULL DEFAULT '',
        time TEXT NOT NULL,
        verdict TEXT NOT NULL,
        confidence REAL NOT NULL,
        delivery TEXT NOT NULL,                     -- not sent / queued / retrying: ... / delivered / undelivered: ...
        PRIMARY KEY (camera, track))""",
    """CREATE TABLE IF NOT EXISTS counts (
        camera TEXT NOT NULL,
        minute TEXT NOT NULL,                       -- 'YYYY-MM-DD HH:MM' (UTC) the people left the view
        with_mask INTEGER NOT NULL DEFAULT 0,
        without_mask INTEGER NOT NULL DEFAULT 0,
        mask_weared_incorrect INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (camera, minute))""",
    """CREATE TABLE IF NOT EXISTS periods (
        camera TEXT NOT NULL,
        start TEXT NOT NULL,                        -- 'YYYY-MM-DD HH:MM:SS' (UTC), a multiple of period_s since 1970
        period_s INTEGER NOT NULL,                  -- privacy: counts; people counted in the period they were first seen
        site TEXT NOT NULL DEFAULT '',
        zone TEXT NOT NULL DEFAULT '',
        with_mask INTEGER NOT NULL DEFAULT 0,
        without_mask INTEGER NOT NULL DEFAULT 0,
        mask_weared_incorrect INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (camera, start, period_s))""",
    """CREATE TABLE IF NOT EXISTS videos (
        path TEXT PRIMARY KEY,                      -- --archive: a row once a video is wholly done
        camera TEXT NOT NULL,
        started TEXT NOT NULL,
        frames INTEGER NOT NULL,
        people INTEGER NOT NULL,
        alerts INTEGER NOT NULL,
        done_at TEXT NOT NULL,
        fingerprint TEXT NOT NULL DEFAULT '',       -- its content (video_fingerprint): moved or copied, the same video
        file_stat TEXT NOT NULL DEFAULT '')""",     # size, mtime, ctime (file_stat): unchanged, no need to read it again
    "CREATE INDEX IF NOT EXISTS people_last_seen ON people (last_seen)",
    "CREATE INDEX IF NOT EXISTS alerts_time ON alerts (time)",
]


ALERT_ID_PREFIX = "alert-"  # privacy counts: an alert's key is a random id, not the person's track


def utc_text(epoch: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if epoch is None else epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _epoch(text: str | None) -> float | None:
    """A stored UTC time ('YYYY-MM-DD HH:MM:SS') in seconds since 1970; None when there is none or it is not one."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def period_start(epoch: float, period_s: float) -> str:
    """The start of the period (a multiple of period_s since 1970, UTC) that `epoch` falls in."""
    return utc_text(epoch // period_s * period_s)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


STORE_KINDS = "an SQLite file (a path) or a PostgreSQL URL (postgresql://user@host/dbname or postgres://...)"
SQLITE_HEADER = b"SQLite format 3\x00"
# The PostgreSQL advisory lock the one writer holds (any fixed 64-bit key; per database, so one per store).
WRITER_LOCK_KEY = 0x6D61736B_64657401
# The columns each table must have: a database with other tables or columns is not a store (see check_schema).
# Columns added after a table's first release: an older store is given them when monitor.py next writes it
# (create), and passes check_schema without them until then (a reader, the fleet page, never needs them).
ADDED_COLUMNS = {("videos", "fingerprint"): "TEXT NOT NULL DEFAULT ''", ("videos", "file_stat"): "TEXT NOT NULL DEFAULT ''",
                 ("cameras", "down_after"): "REAL NOT NULL DEFAULT 0"}
# A camera a live run reports as live or (re)connecting is shown as down once its last frame is older than its
# down_after plus this: the driver writes about once a second, and the workers' clocks may be a little off the
# reader's. Past that, the monitor.py run that reported it has stopped (kill -9, a machine gone) or lost it.
REPORT_SLACK_S = 5.0
DEFAULT_DOWN_AFTER_S = 30.0  # a store from before the cameras' down_after was kept: the fleet's default
REPORTED_STATES = ("live", "connecting", "reconnecting")  # states only a running live driver keeps true

COLUMNS = {re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", statement).group(1):
           set(re.findall(r"^\s*(\w+) (?:TEXT|INTEGER|BIGINT|REAL)", statement, re.MULTILINE))
           for statement in SCHEMA if statement.startswith("CREATE TABLE")}


def check_target(target: str) -> None:
    """A URL of any other scheme (mysql://...) is refused: opened as a path, it would quietly become a local
    SQLite file named after the URL."""
    if is_postgres(target):
        return
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", target)
    if scheme:
        raise UserError(f"--db takes {STORE_KINDS}, not a {scheme.group(1)}:// URL", target)


@dataclass(frozen=True)
class DoneVideo:
    """A video of the archive done before, as the store knows it."""

    fingerprint: str  # video_fingerprint: its size and the hash of its first and last MiB ('' from older stores)
    file_stat: str  # file_stat: size, mtime and ctime when it was done ('' from older stores)


@dataclass
class Batch:
    """What the driver writes in one transaction."""

    people: list[dict]
    alerts: list[dict]
    states: dict[str, tuple[str, str]]  # camera -> (state, since)
    frames: dict[str, tuple[int, str | None]]  # camera -> (frames processed since the last batch, last frame time)
    periods: list[dict] = field(default_factory=list)  # privacy counts: {camera, start, period_s, site, zone, verdict: n...}


class Store:
    """A connection to the store; `Store.open(PATH_OR_URL)` picks SQLite or PostgreSQL."""

    def __init__(self, connection, postgres: bool, where: str):
        self.db = connection
        self.postgres = postgres
        self.where = where
        self.lock_file: int | None = None  # SQLite: the writer's flock (see claim_writer)

    @classmethod
    def open(cls, target: str | Path, create: bool = True, writer: bool = False) -> Store:
        """create: make the tables of a new store. A reader (the fleet page) passes False: a missing store is an
        error, and the store is opened read-only, so a reader with read access only can read it and a read never
        changes it (not even an SQLite file's journal mode).
        writer: monitor.py, the one writer, refused while another run writes this store (claim_writer)."""
        target = str(target)
        read_only = not create
        check_target(target)
        if is_postgres(target):
            try:
                import psycopg
            except ModuleNotFoundError:
                raise UserError("a PostgreSQL store needs psycopg: pip install -r requirements-fleet.txt") from None
            try:
                # autocommit: a lone statement commits by itself, and transaction() is a real BEGIN ... COMMIT
                # (without it the first SELECT would open a transaction that every later write nests in, uncommitted).
                connection = psycopg.connect(target, connect_timeout=10, autocommit=True)
            except psycopg.Error as exc:
                raise UserError(f"cannot connect to PostgreSQL: {str(exc).strip().splitlines()[0]}") from None
            store = cls(connection, True, _redact(target))
            if read_only:  # the server refuses any write in this session, whatever a bug here might try
                try:
                    store.execute("SET default_transaction_read_only = on")
                except psycopg.Error as exc:
                    store.close()
                    raise UserError(f"cannot read the PostgreSQL store: {str(exc).strip().splitlines()[0]}",
                                    store.where) from None
        else:
            path = Path(target)
            if not create and not path.is_file():
                raise UserError("no such store (monitor.py writes it)", path)
            _check_sqlite_file(path)
            try:
                connection = (_connect_sqlite_read_only(path) if read_only
                              else sqlite3.connect(str(path), timeout=30, isolation_level=None))
            except sqlite3.Error as exc:
                raise UserError(f"cannot open the SQLite store: {exc}", path) from None
            store = cls(connection, False, str(path))
        try:
            store.check_schema(empty_ok=create)  # before anything is written: another program's database stays as it was
            if writer:
                store.claim_writer()
            if not store.postgres and not read_only:
                store.db.execute("PRAGMA journal_mode=WAL")  # readers (the fleet page) never block the writer
                store.db.execute("PRAGMA synchronous=NORMAL")
            if create:
                store.create()
        except sqlite3.Error as exc:
            store.close()
            raise UserError(f"cannot open the SQLite store: {exc}", store.where) from None
        except BaseException:
            store.close()
            raise
        return store

    def check_schema(self, empty_ok: bool) -> None:
        """Refuse a database that is not a monitor.py store (another program's, with its own `people` table):
        writing into it would fail halfway or change someone else's data. A store made by this version or an
        older one (fewer tables) passes; an empty database passes when it is to become a new store."""
        tables = self.columns()
        if not tables:
            if empty_ok:
                return
            raise UserError("not a monitor.py store: it has no tables (monitor.py --db makes them)", self.where)
        if "cameras" not in tables:
            raise UserError(f"not a monitor.py store: it has no cameras table (it has {', '.join(sorted(tables)[:5])})",
                            self.where)
        for table, wanted in COLUMNS.items():
            missing = wanted - tables.get(table, wanted) - {column for t, column in ADDED_COLUMNS if t == table}
            if missing:
                raise UserError(f"not a monitor.py store: its {table} table has no {', '.join(sorted(missing))} column",
                                self.where)

    def columns(self) -> dict[str, set[str]]:
        """Every table of the database and its columns."""
        if self.postgres:
            rows = self.execute("SELECT table_name, column_name FROM information_schema.columns "
                                "WHERE table_schema = current_schema()")
        else:
            rows = self.execute("SELECT m.name, c.name FROM sqlite_master AS m, pragma_table_info(m.name) AS c "
                                "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'")
        tables: dict[str, set[str]] = {}
        for table, column in rows:
            tables.setdefault(table, set()).add(column)
        return tables

    def claim_writer(self) -> None:
        """One monitor.py run writes a store at a time (two would count every person twice). The lock dies
        with the process, kill -9 included: SQLite, an flock on the database file itself (SQLite's own locks are
        fcntl locks, which flock does not touch on Linux; readers take none, and no lock file is left beside the
        store); PostgreSQL, an advisory lock held by this connection's session."""
        if self.postgres:
            held = self.execute("SELECT pg_try_advisory_lock(?)", (WRITER_LOCK_KEY,))[0][0]
        else:
            import fcntl

            try:
                self.lock_file = os.open(self.where, os.O_RDONLY)
            except OSError as exc:
                raise UserError(f"cannot open the store to lock it: {exc.strerror}", self.where) from None
            try:
                fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False
        if not held:
            raise UserError("another monitor.py run is writing this store: wait for it to end, or give another --db",
                            self.where)

    # -- plumbing: one statement text for both databases
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Iterable = ()) -> list[tuple]:
        cur = self.db.execute(self._sql(sql), tuple(params))
        try:
            return cur.fetchall() if cur.description else []
        finally:
            if not self.postgres:
                cur.close()

    def _rowcount(self, sql: str, params: Iterable) -> int:
        cur = self.db.execute(self._sql(sql), tuple(params))
        return cur.rowcount

    def transaction(self):
        if self.postgres:
            return self.db.transaction()
        return _SqliteTransaction(self.db)

    def create(self) -> None:
        """The tables of a new store, and the columns an older store lacks (ADDED_COLUMNS)."""
        with self.transaction():
            for statement in SCHEMA:
                self.execute(statement)
            tables = self.columns()
            for (table, column), declaration in ADDED_COLUMNS.items():
                if column not in tables.get(table, set()):
                    self.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")  # names from the code, not users

    def close(self) -> None:
        self.db.close()  # PostgreSQL: the session's advisory lock goes with it
        if self.lock_file is not None:
            os.close(self.lock_file)  # the flock goes with it
            self.lock_file = None

    # -- writes (the driver)
    def register_cameras(self, cameras: Iterable, down_after: Mapping[str, float] | None = None) -> None:
        """down_after: {camera: seconds without a frame before it is down} (live cameras), kept so that a reader
        can tell a camera whose reports stopped (monitor.py killed) from a live one (see summary)."""
        now = utc_text()
        down_after = down_after or {}
        with self.transaction():
            for cam in cameras:
                self.execute("INSERT INTO cameras (name, source, site, zone, state, state_since, down_after) "
                             "VALUES (?, ?, ?, ?, 'starting', ?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET source = excluded.source, site = excluded.site, "
                             "zone = excluded.zone, state = 'starting', state_since = excluded.state_since, "
                             "down_after = excluded.down_after",
                             (cam.name, _display_source(cam.source), cam.site, cam.zone, now,
                              float(down_after.get(cam.name, 0.0))))

    def write(self, batch: Batch) -> tuple[int, int]:
        """One transaction; returns (people, alerts) newly stored (a repeat of a stored key is skipped)."""
        people = alerts = 0
        with self.transaction():
            for p in batch.people:
                added = self._rowcount(
                    "INSERT INTO people (camera, track, site, zone, first_seen, last_seen, verdict, frames, confidence, crossings) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (camera, track) DO NOTHING",
                    (p["camera"], p["track"], p["site"], p["zone"], p["first_seen"], p["last_seen"], p["verdict"],
                     p["frames"], p["confidence"], p.get("crossings", "")))
                if added and p["verdict"] in VERDICTS:
                    people += 1
                    column = p["verdict"]  # one of VERDICTS: never user text in the statement
                    self.execute(f"INSERT INTO counts (camera, minute, {column}) VALUES (?, ?, 1) ON CONFLICT (camera, minute) "
                                 f"DO UPDATE SET {column} = counts.{column} + 1", (p["camera"], p["last_seen"][:16]))
            for a in batch.alerts:
                alerts += self._rowcount(
                    "INSERT INTO alerts (camera, track, site, zone, time, verdict, confidence, delivery) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (camera, track) DO NOTHING",
                    (a["camera"], a["track"], a["site"], a["zone"], a["time"], a["verdict"], a["confidence"], a["delivery"]))
            for row in batch.periods:  # added to what the period holds: a batch is written once (one transaction)
                counted = [int(row.get(v, 0)) for v in VERDICTS]
                people += sum(counted)
                self.execute("INSERT INTO periods (camera, start, period_s, site, zone, with_mask, without_mask, mask_weared_incorrect) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (camera, start, period_s) DO UPDATE SET "
                             + ", ".join(f"{v} = periods.{v} + excluded.{v}" for v in VERDICTS),
                             (row["camera"], row["start"], int(row["period_s"]), row["site"], row["zone"], *counted))
            for camera, (state, since) in batch.states.items():
                self.execute("UPDATE cameras SET state = ?, state_since = ? WHERE name = ? AND state <> ?",
                             (state, since, camera, state))
            for camera, (frames, last) in batch.frames.items():
                self.execute("UPDATE cameras SET frames = frames + ?, last_frame_at = COALESCE(?, last_frame_at) WHERE name = ?",
                             (frames, last, camera))
        return people, alerts

    def prune(self, older_than_s: float, now: float | None = None) -> dict[str, int]:
        """--retain: delete people, alerts, per-minute counts and periods older than `older_than_s` (by the time
        in each row, UTC text that sorts as it reads; a period by its start); cameras and the archive's video
        list stay."""
        cutoff = utc_text((time.time() if now is None else now) - older_than_s)
        deleted = {}
        with self.transaction():
            for table, column, limit in (("people", "last_seen", cutoff), ("alerts", "time", cutoff),
                                         ("counts", "minute", cutoff[:16]), ("periods", "start", cutoff)):
                deleted[table] = self._rowcount(f"DELETE FROM {table} WHERE {column} < ?", (limit,))
        return deleted

    def set_delivery(self, camera: str, track: str, status: str) -> None:
        with self.transaction():
            self.execute("UPDATE alerts SET delivery = ? WHERE camera = ? AND track = ?", (status[:500], camera, track))

    def set_state(self, camera: str, state: str) -> None:
        with self.transaction():
            self.execute("UPDATE cameras SET state = ?, state_since = ? WHERE name = ? AND state <> ?",
                         (state, utc_text(), camera, state))

    def set_worker(self, camera: str, worker: str) -> None:
        with self.transaction():
            self.execute("UPDATE cameras SET worker = ? WHERE name = ?", (worker, camera))

    # -- the archive
    def videos_done(self) -> dict[str, DoneVideo]:
        """The videos done by path: their fingerprint ('' for a video done before fingerprints were kept) and
        file stat ('' before file stats were kept)."""
        stat = "file_stat" if "file_stat" in self.columns().get("videos", set()) else "''"
        return {path: DoneVideo(fingerprint, file_stat)
                for path, fingerprint, file_stat in self.execute(f"SELECT path, fingerprint, {stat} FROM videos")}

    def finish_video(self, path: str, fingerprint: str, camera: str, started: str, frames: int,
                     batch: Batch, file_stat: str = "") -> tuple[int, int]:
        """A video's people and alerts and its 'done' row in one transaction: a video cut halfway leaves nothing.
        Another recording saved since under the path of one done keeps that one's row, renamed
        'PATH (replaced at TIME)': its fingerprint still knows that recording if it turns up elsewhere."""
        now = utc_text()
        with self.transaction():
            people, alerts = self.write(batch)  # nested: joins this transaction (a savepoint in PostgreSQL)
            before = self.execute("SELECT fingerprint FROM videos WHERE path = ?", (path,))
            if before and before[0][0] != fingerprint:
                self.execute("UPDATE videos SET path = ? WHERE path = ?", (f"{path} (replaced at {now})", path))
            self.execute("INSERT INTO videos (path, camera, started, frames, people, alerts, done_at, fingerprint, file_stat) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET file_stat = excluded.file_stat",
                         (path, camera, started, frames, people, alerts, now, fingerprint, file_stat))
        return people, alerts

    def set_file_stats(self, stats: Mapping[str, str]) -> None:
        """{path: file stat} of videos done whose content was read again and found the same (touched, or done
        before file stats were kept): the next rerun knows them by their stat without reading them."""
        if stats:
            with self.transaction():
                for path, file_stat in stats.items():
                    self.execute("UPDATE videos SET file_stat = ? WHERE path = ?", (file_stat, path))

    # -- reads (the fleet page, the tests, the summary)
    def summary(self, now: float | None = None, hour_s: float = 3600, latest_alerts: int = 20, latest_periods: int = 50) -> dict:
        """What the fleet page shows. A camera's state is the one its run wrote, except that a camera written as
        live or (re)connecting whose last frame (or, with none, its state) is older than its down_after (plus
        REPORT_SLACK_S) is shown as down since then, with "stale": its run stopped reporting it (killed, or its
        machine gone), so nothing says it is live."""
        now = time.time() if now is None else now
        since = utc_text(now - hour_s)
        tables = self.columns()  # a store from an older monitor.py may lack a table: read as empty, not an error
        cameras = []
        people: dict[str, list[int]] = {}
        seen_in_hour = [statement for table, statement in (  # people seen in the last hour; with privacy counts, the periods that began in it
            ("people", "SELECT camera, COUNT(*), SUM(CASE WHEN verdict = 'with_mask' THEN 1 ELSE 0 END) FROM people "
                       "WHERE last_seen >= ? GROUP BY camera"),
            ("periods", "SELECT camera, SUM(with_mask + without_mask + mask_weared_incorrect), SUM(with_mask) FROM periods "
                        "WHERE start >= ? GROUP BY camera")) if table in tables]
        for camera, total, masked in (self.execute(" UNION ALL ".join(seen_in_hour), (since,) * len(seen_in_hour))
                                      if seen_in_hour else []):
            seen = people.setdefault(camera, [0, 0])
            seen[0] += int(total or 0)
            seen[1] += int(masked or 0)
        down_after = "down_after" if "down_after" in tables.get("cameras", set()) else "0"
        for name, source, site, zone, state, state_since, last_frame_at, frames, limit in self.execute(
                f"SELECT name, source, site, zone, state, state_since, last_frame_at, frames, {down_after} FROM cameras "
                "ORDER BY site, zone, name"):
            total, masked = people.get(name, (0, 0))
            stale = False
            if state in REPORTED_STATES:  # the latest sign of life its run wrote: a frame, or the state itself
                heard = max((t for t in (last_frame_at, state_since) if _epoch(t) is not None), key=_epoch, default=None)
                if heard is not None and now - _epoch(heard) > (float(limit or 0) or DEFAULT_DOWN_AFTER_S) + REPORT_SLACK_S:
                    state, state_since, stale = "down", heard, True
            cameras.append({"name": name, "source": source, "site": site, "zone": zone, "state": state,
                            "state_since": state_since, "last_frame_at": last_frame_at, "stale": stale,
                            "frames": int(frames), "people_last_hour": int(total or 0), "masked_last_hour": int(masked or 0),
                            "compliance": (int(masked) / int(total)) if total else None})
        sites: dict[str, dict] = {}
        for cam in cameras:
            site = sites.setdefault(cam["site"], {"site": cam["site"], "cameras": 0, "live": 0, "people_last_hour": 0,
                                                  "masked_last_hour": 0})
            site["cameras"] += 1
            site["live"] += cam["state"] == "live"
            site["people_last_hour"] += cam["people_last_hour"]
            site["masked_last_hour"] += cam["masked_last_hour"]
        for site in sites.values():
            site["compliance"] = site["masked_last_hour"] / site["people_last_hour"] if site["people_last_hour"] else None
        alerts = []
        for row in self.execute("SELECT camera, site, zone, track, time, verdict, confidence, delivery FROM alerts "
                                "ORDER BY time DESC, camera LIMIT ?", (latest_alerts,)) if "alerts" in tables else []:
            alert = dict(zip(("camera", "site", "zone", "track", "time", "verdict", "confidence", "delivery"), row))
            if alert["track"].startswith(ALERT_ID_PREFIX):  # privacy counts: no track, only the alert's own id
                alert["alert"], alert["track"] = alert["track"], None
            alerts.append(alert)
        periods = []
        for camera, site, zone, start, period_s, *counted in self.execute(
                "SELECT camera, site, zone, start, period_s, with_mask, without_mask, mask_weared_incorrect FROM periods "
                "ORDER BY start DESC, camera LIMIT ?", (latest_periods,)) if "periods" in tables else []:
            total = sum(counted)
            periods.append({"camera": camera, "site": site, "zone": zone, "start": start, "period_s": int(period_s),
                            "people": total, **dict(zip(VERDICTS, counted)),
                            "compliance": counted[0] / total if total else None})
        return {"now": utc_text(now), "cameras": cameras, "sites": sorted(sites.values(), key=lambda s: s["site"]),
                "alerts": alerts, "periods": periods}


def _check_sqlite_file(path: Path) -> None:
    """A path that exists must be an SQLite database (or an empty file): a text file is not a store."""
    if path.is_dir():
        raise UserError(f"not a monitor.py store: a folder (--db takes {STORE_KINDS})", path)
    try:
        with open(path, "rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserError(f"cannot read the store: {exc.strerror}", path) from None
    if header and header != SQLITE_HEADER:
        raise UserError("not a monitor.py store: not an SQLite database", path)


def _connect_sqlite_read_only(path: Path) -> sqlite3.Connection:
    """The store for reading only (SQLite URI mode=ro): a reader needs no write access and changes nothing.

    A WAL store that no writer has open has no -wal and -shm files, and a reader that may not create them
    cannot open it that way; with no -wal file there is nothing beyond the file itself to read, so it is then
    read as immutable (a writer that has it open always has its -wal file there, and then mode=ro works)."""
    uri = "file:" + quote(str(path.absolute()))
    connection = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=30, isolation_level=None)
    try:
        connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return connection
    except sqlite3.OperationalError:
        connection.close()
        if Path(f"{path}-wal").exists():
            raise
    connection = sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, timeout=30, isolation_level=None)
    connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    return connection


class _SqliteTransaction:
    """BEGIN IMMEDIATE ... COMMIT, nested calls joining the outer one (as psycopg's savepoints behave)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.outer = False

    def __enter__(self):
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.outer = True
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.outer:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _display_source(source: str) -> str:
    """A camera URL without its password, as it is shown on the page."""
    return _redact(source)


# Query parameters that carry a secret in camera and database URLs (?password=..., ?token=..., &sig=...).
SECRET_PARAMETERS = frozenset({"password", "passwd", "pass", "pwd", "secret", "token", "access_token", "auth", "key",
                               "apikey", "api_key", "sig", "signature", "sslpassword"})


def _redact(url: str) -> str:
    """The URL with its password (user:***@host) and the values of secret-looking query parameters hidden.
    The user information ends at the authority's last '@' (a password may hold '@': admin:Summer@2026@host)."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        auth, at, host = authority.rpartition("@")
        if at and ":" in auth:  # (a user name alone is no secret)
            url = f"{scheme}://{auth.split(':', 1)[0]}:***@{host}{rest[len(authority):]}"
    base, question, query = url.partition("?")
    if not question:
        return url
    query, hash_, fragment = query.partition("#")
    hidden = [f"{name}=***" if sep and name.lower() in SECRET_PARAMETERS else f"{name}{sep}{value}"
              for name, sep, value in (part.partition("=") for part in query.split("&"))]
    return f"{base}?{'&'.join(hidden)}{hash_}{fragment}"
