"""--retain: the outputs of monitoring runs are deleted once older than a duration.

Only folders the project made are touched: a monitoring run writes MARKER into its run folder when it
creates it (never into a folder of the user's that was there before: runner.py refuses --retain with
--exist-ok into such a folder), and only folders directly under the run's --project that hold that marker
are swept -- never the user's own files beside them, never a symlink. The marker lists the files the runs
in the folder wrote (its manifest, "outputs", kept up to date while a run goes on). Inside such a folder:

* the files a run wrote (listed in the manifest, and by place and name is_run_output: its images, videos,
  report and per-detection records) older than the duration (by modification time) are deleted; any other
  file -- one that was there before the run, or put there since -- is the user's and stays;
* the monitoring tables (people.csv, alerts.jsonl, counts.csv/json) lose the rows older than it (by
  the wall-clock time in each row); the running process prunes its own tables through its sinks;
* a folder left with nothing but its marker is removed.

A video still being written is not cut: it goes once its last frame is older than the duration.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from maskdet.csvcells import SafeDictWriter
from maskdet.fileio import atomic_write_text

MARKER = ".maskdet-monitoring.json"
MANIFEST_EVERY_S = 60.0  # a running monitoring run lists its new outputs in its marker this often
DEAD_SLACK_S = 60.0  # and a frame may take this long on top: what a run that died wrote after its last update
MEDIA_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".mp4"})
TABLES = {"people.csv": "first_seen_at", "alerts.jsonl": "time", "counts.csv": "until", "counts.json": "until"}
# What a monitoring run writes at the top of its folder besides its annotated media (named after its sources) ...
RUN_FILES = frozenset({*TABLES, "predictions.csv", "predictions.json", "report.html"})
# ... and in its subfolders: --save-txt labels, --save-crop crops, people's crops, alert frames.
RUN_SUBFOLDERS = {"labels": frozenset({".txt"}), "crops": MEDIA_SUFFIXES, "people": MEDIA_SUFFIXES,
                  "alerts": MEDIA_SUFFIXES}


# maskdet.fileio's atomic writes go through ".NAME.XXXXXXXX.tmp" beside NAME (eight hex digits).
LEFTOVER_OF_A_WRITE = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")


def is_run_output(run_dir: Path, path: Path) -> bool:
    """A file a monitoring run writes, by its place and name: a note, a table or a folder of the user's own inside a
    run folder (notes.txt, results.csv, mine/...) is never one. (An image of theirs among the annotated frames, or a
    .txt in labels/, cannot be told apart: it is swept with them, as the README says.)"""
    leftover = LEFTOVER_OF_A_WRITE.fullmatch(path.name)
    if leftover:  # what a write cut short by a kill left (maskdet.fileio): one of the outputs it was writing
        path = path.with_name(leftover.group(1))
    relative = path.relative_to(run_dir)
    if len(relative.parts) == 1:
        return path.name in RUN_FILES or path.suffix.lower() in MEDIA_SUFFIXES
    if len(relative.parts) == 2 and relative.parts[0] in RUN_SUBFOLDERS:
        return path.suffix.lower() in RUN_SUBFOLDERS[relative.parts[0]]
    if len(relative.parts) == 3 and relative.parts[0] == "crops":  # crops/<class>/<frame>_<i>.jpg
        return path.suffix.lower() in MEDIA_SUFFIXES
    return False


def age_of(stamp: str) -> float | None:
    """Seconds since an ISO 8601 wall-clock time, or None when it is not one (such a row is kept)."""
    try:
        when = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.astimezone()
    return time.time() - when.timestamp()


def read_marker(run_dir: Path) -> dict | None:
    """The marker of a run folder, or None when there is none or it is not a marker's JSON object."""
    try:
        marker = json.loads((run_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _files_in(run_dir: Path) -> set[str]:
    """Every file under the run folder (no symlink followed), as POSIX paths relative to it."""
    found = set()
    for folder, _dirs, names in os.walk(run_dir, followlinks=False):
        for name in names:
            path = Path(folder) / name
            if name != MARKER and not path.is_symlink():
                found.add(path.relative_to(run_dir).as_posix())
    return found


class RunMarker:
    """This run's marker, with the manifest of what the runs in its folder wrote: what --retain may delete.

    A file already in the folder when the run started is never added (it is the user's, or an earlier run's,
    listed by that run); a new file is added once it has the name and place of an output (is_run_output).
    The manifest is rewritten at the start, after the sinks open, at every sweep, every MANIFEST_EVERY_S while
    frames come, and at the end, so a run killed at any point leaves its tables listed; the outputs it wrote after
    its last update are listed by the next sweep that finds it gone (complete_dead_manifest)."""

    def __init__(self, run_dir: Path, privacy: str):
        self.run_dir, self.privacy = run_dir, privacy
        self.updated_at = time.monotonic()
        previous = read_marker(run_dir)
        listed = previous.get("outputs") if previous else None
        before = _files_in(run_dir)
        if previous is not None and not isinstance(listed, list):  # a marker from before manifests: outputs by name
            listed = [rel for rel in before if is_run_output(run_dir, run_dir / rel)]
        self.outputs: set[str] = {str(rel) for rel in listed or []}
        self.before = before

    def update(self, running: bool = True) -> None:
        """Add the outputs written since the start to the manifest and rewrite the marker."""
        if self.run_dir.is_dir():
            for rel in _files_in(self.run_dir) - self.before:
                if is_run_output(self.run_dir, self.run_dir / rel):
                    self.outputs.add(rel)
        write_marker(self.run_dir, self.privacy, running, sorted(self.outputs))
        self.updated_at = time.monotonic()

    def keep_up(self) -> None:
        """Called on every frame: the manifest is brought up to date once MANIFEST_EVERY_S has passed."""
        if time.monotonic() - self.updated_at >= MANIFEST_EVERY_S:
            self.update()


def complete_dead_manifest(run_dir: Path, marker: dict) -> None:
    """A run that died without closing listed its outputs up to its last update, at most MANIFEST_EVERY_S (and a
    frame) before it died: the outputs written after that, by their name, place and time, are added. A file of
    the user's from before the run is older than the marker; one put there much later is past the window."""
    listed = marker.get("outputs")
    if not isinstance(listed, list):
        return  # a marker from before manifests: outputs are told by name alone anyway
    try:
        last_update = (run_dir / MARKER).stat().st_mtime
    except OSError:
        return
    known = set(map(str, listed))
    for rel in sorted(_files_in(run_dir) - known):
        path = run_dir / rel
        try:
            written = path.stat().st_mtime
        except OSError:
            continue
        if is_run_output(run_dir, path) and last_update - 1.0 <= written <= last_update + MANIFEST_EVERY_S + DEAD_SLACK_S:
            known.add(rel)
    marker["outputs"] = sorted(known)


def write_marker(run_dir: Path, privacy: str, running: bool = True, outputs: list[str] | None = None) -> None:
    """Mark a monitoring run folder as ours; `running` (with the pid) tells other processes to leave its tables alone,
    `outputs` lists the files its runs wrote (the only ones --retain deletes)."""
    marker: dict = {"made_by": "maskdet detect.py (monitoring)", "privacy": privacy, "pid": os.getpid(), "running": running}
    started = _own_process_start(os.getpid())
    if started is not None:
        marker["process_start"] = started
    if outputs is not None:
        marker["outputs"] = outputs
    atomic_write_text(run_dir / MARKER, json.dumps(marker) + "\n")


def process_start(pid: int) -> str | None:
    """When a process started, as the kernel counts it (this boot's id and the start time in clock ticks), or None
    where /proc does not say (not Linux). A PID is reused once its process is gone, by a later run of detect.py
    too (PID 1 in a restarted container): the PID and this together name one process."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"  # field 22, after the command name in parentheses
    except (OSError, IndexError):
        return None


@functools.lru_cache(maxsize=1)
def _own_process_start(pid: int) -> str | None:
    """process_start of this process, read from /proc once (a marker is written every minute); keyed by the PID so
    that a forked child reads its own."""
    return process_start(pid)


def _same_process(pid: int, marker: dict) -> bool:
    """The marker's process is this PID's now: alive, and (where both are known) started when the marker says."""
    if not _process_alive(pid):
        return False
    recorded, now = marker.get("process_start"), process_start(pid)
    return recorded is None or now is None or recorded == now


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_elsewhere(run_dir: Path, log: Callable[[str], None] = lambda _m: None) -> bool:
    """Another live process writes this run: its tables are its own to prune. A marker that says "running" for a
    process that is gone (killed, crashed) is made honest: it says it ended without closing, and `log` says so."""
    marker = read_marker(run_dir)
    if marker is None:
        return False
    try:
        pid, running = int(marker.get("pid", 0)), bool(marker.get("running"))
    except (TypeError, ValueError):
        return False
    if not running or pid <= 0:
        return False
    if _same_process(pid, marker):
        return pid != os.getpid()  # alive: another's run, unless it is this process's own
    complete_dead_manifest(run_dir, marker)
    marker.update(running=False, ended="without closing (its process was gone: killed or crashed)")
    try:
        atomic_write_text(run_dir / MARKER, json.dumps(marker) + "\n")
    except OSError:
        pass
    log(f"note: the monitoring run in {run_dir} ended without closing (process {pid} is gone): people still in "
        "view then have no row in its people.csv")
    return False


def prune_table(path: Path, older_than_s: float) -> int:
    """Rewrite a monitoring table without its rows older than the duration; returns how many went."""
    column = TABLES[path.name]
    text = path.read_text(encoding="utf-8")
    old = lambda stamp: (age_of(stamp) or 0.0) > older_than_s  # noqa: E731 (undated rows are kept)
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = list(reader)
        kept = [r for r in rows if not old(r.get(column, ""))]
        if len(kept) == len(rows):
            return 0
        buffer = io.StringIO()
        writer = SafeDictWriter(buffer, reader.fieldnames or [])  # already safe cells stay as they are
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(path, buffer.getvalue())
    elif path.suffix == ".jsonl":
        lines = [line for line in text.splitlines() if line.strip()]
        kept_lines = [line for line in lines if not old(_field(line, column))]
        if len(kept_lines) == len(lines):
            return 0
        atomic_write_text(path, "".join(line + "\n" for line in kept_lines))
        return len(lines) - len(kept_lines)
    else:  # counts.json: {"period_s": ..., "periods": [...]}
        data = json.loads(text)
        rows = data.get("periods", []) if isinstance(data, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError('not a table of counts ({"period_s": ..., "periods": [{...}, ...]})')
        kept = [r for r in rows if not old(r.get(column, ""))]
        if len(kept) == len(rows):
            return 0
        data["periods"] = kept
        atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    return len(rows) - len(kept)


def _field(line: str, key: str) -> str:
    try:
        return str(json.loads(line).get(key, ""))
    except (ValueError, AttributeError):
        return ""


def sweep(project: Path, older_than_s: float, current: Path | None = None,
          log: Callable[[str], None] = lambda _m: None) -> tuple[int, int]:
    """Delete what is older than the duration in every monitoring run folder under `project`.

    `current` is this process's own run: its tables are pruned by its sinks, not here (they hold them open).
    Returns (files deleted, rows deleted)."""
    files = rows = 0
    if not project.is_dir():
        return 0, 0
    now = time.time()
    for run_dir in sorted(project.iterdir()):
        if run_dir.is_symlink() or not run_dir.is_dir() or not (run_dir / MARKER).is_file():
            continue
        own_tables = run_dir == current or _running_elsewhere(run_dir, log)  # first: it completes a dead run's list
        marker = read_marker(run_dir) or {}
        listed = marker.get("outputs")  # None: a marker from before manifests, outputs told by name alone
        listed = set(map(str, listed)) if isinstance(listed, list) else None
        for folder, _dirs, names in os.walk(run_dir, followlinks=False):
            for name in names:
                path = Path(folder) / name
                if name == MARKER or path.is_symlink() or not is_run_output(run_dir, path):
                    continue
                if listed is not None and path.relative_to(run_dir).as_posix() not in listed:
                    continue  # not written by a run: the user's, whatever its name
                try:
                    if folder == str(run_dir) and name in TABLES:
                        if not own_tables:
                            rows += prune_table(path, older_than_s)
                        continue
                    if now - path.stat().st_mtime > older_than_s:
                        path.unlink()
                        files += 1
                except (OSError, ValueError) as exc:  # a file another process just removed, an unreadable table
                    log(f"note: --retain skipped {path}: {exc}")
        if run_dir != current and not _running_elsewhere(run_dir):
            _remove_if_spent(run_dir, older_than_s, now)
    return files, rows


def _remove_if_spent(run_dir: Path, older_than_s: float, now: float) -> None:
    """A run folder whose outputs are all gone (tables with no rows left, no other file) goes with its marker."""
    for folder, _dirs, names in os.walk(run_dir, followlinks=False):
        for name in names:
            path = Path(folder) / name
            if name == MARKER:
                continue
            if folder == str(run_dir) and name in TABLES and _empty_table(path):
                continue
            return  # something else is still there: a user's file, or an output not old enough
    if now - (run_dir / MARKER).stat().st_mtime > older_than_s:
        shutil.rmtree(run_dir, ignore_errors=True)


def _empty_table(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".csv":
            return len(text.strip().splitlines()) <= 1
        if path.suffix == ".jsonl":
            return not text.strip()
        return not json.loads(text).get("periods")
    except (OSError, ValueError, AttributeError):
        return False


class Retention:
    """Sweeps at the start of a run and every `every_s` while it runs (a quarter of the duration, at most a minute)."""

    def __init__(self, project: Path, older_than_s: float, current: Path, prune_own: Callable[[float], int],
                 log: Callable[[str], None], record_outputs: Callable[[], None] = lambda: None):
        self.project, self.older_than_s, self.current = Path(project), older_than_s, current
        self.prune_own = prune_own
        self.record_outputs = record_outputs  # the run's manifest, brought up to date before each sweep
        self.log = log
        self.every_s = min(60.0, max(0.5, older_than_s / 4))
        self.last = 0.0
        self.files = self.rows = 0

    def __call__(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        self.record_outputs()
        files, rows = sweep(self.project, self.older_than_s, self.current, self.log)
        self.files += files
        self.rows += rows + self.prune_own(self.older_than_s)

    def lines(self) -> list[str]:
        return [f"retention: deleted {self.files} files and {self.rows} table rows older than "
                f"{self.older_than_s:g} s from monitoring runs in {self.project}"]
