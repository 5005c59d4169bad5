"""Per-job folders with names the server chooses, their expiry, and their deletion when the server stops.

A job (one photo saved for download, or one video) owns a folder `<root>/<32 hex digits>/`; the
files in it have fixed names the server picks. Clients only ever name a job id and one of those
names, both checked against what the server made, so no path from a client reaches the disk.

Results are reachable only through the running server, and they hold faces: a finished job's folder goes
`keep_s` after it was made, the oldest go early when the kept results pass `max_saved_bytes`, and every
job folder goes when the server stops (`clear`). The run folder holds a marker file (MARKER) that the
server keeps locked while it runs; a server that could not clean up (kill -9, a power cut) leaves its
marker unlocked, and the next one deletes that run's job folders once they are older than `keep_s`
(`sweep_earlier_runs`). Nothing without the marker, and nothing but job folders in a marked run, is touched.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock; an earlier run is then told apart by age alone
    fcntl = None

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
MARKER = ".maskdet-serve"  # in a run folder made by serve.py: its job folders are the server's to delete
MARKER_TEXT = ("Made by serve.py (pid {pid}), which keeps this file locked while it runs. Its job folders "
               "(32 hex digits) are deleted when it stops, or by the next serve.py once older than --keep-minutes.\n")


@dataclass
class Job:
    id: str
    kind: str  # "photo" or "video"
    folder: Path
    source: str  # the client's file name, for display only
    created: float = field(default_factory=time.monotonic)
    status: str = "queued"  # queued, running, done, failed
    frames: int = 0
    total: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    warning: str | None = None  # done, but not all of it: a video that ended before its header's frame count
    files: dict[str, Path] = field(default_factory=dict)  # public name -> file in self.folder
    size: int = 0  # bytes its files take once done (what --max-saved-mb counts)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


def lock(handle) -> bool:
    """An exclusive lock on an open marker file, without waiting; False when another process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class JobStore:
    """Jobs by id; finished ones older than `keep_s` are deleted (running jobs are left until they end), and the
    oldest finished ones early while the results kept take more than `max_saved_bytes`."""

    def __init__(self, root: Path, keep_s: float, max_saved_bytes: int | None = None):
        self.root = root
        self.keep_s = keep_s
        self.max_saved_bytes = max_saved_bytes
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.closed = False
        root.mkdir(parents=True, exist_ok=True)
        # Locked before it is in place: a server starting beside this one never finds it unlocked.
        written = root / f"{MARKER}.{os.getpid()}.tmp"
        self.marker = open(written, "w", encoding="utf-8")  # noqa: SIM115  (held, locked, until clear())
        lock(self.marker)
        self.marker.write(MARKER_TEXT.format(pid=os.getpid()))
        self.marker.flush()
        os.replace(written, root / MARKER)

    def create(self, kind: str, source: str) -> Job:
        self.expire()
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir()
        job = Job(job_id, kind, folder, source)
        with self.lock:
            self.jobs[job_id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        if not JOB_ID.match(job_id):
            return None
        with self.lock:
            return self.jobs.get(job_id)

    def file(self, job_id: str, name: str) -> Path | None:
        """The file a job made under `name`, or None: only names the server gave out are looked up."""
        job = self.get(job_id)
        path = job.files.get(name) if job else None
        return path if path is not None and path.is_file() else None

    def active(self, kind: str) -> int:
        with self.lock:
            return sum(1 for job in self.jobs.values() if job.kind == kind and not job.finished)

    def expire(self, now: float | None = None) -> int:
        """Delete finished jobs older than keep_s; returns how many went."""
        now = time.monotonic() if now is None else now
        with self.lock:
            old = [job for job in self.jobs.values() if job.finished and now - job.created > self.keep_s]
        for job in old:
            self.remove(job)
        return len(old)

    def kept(self, job: Job) -> int:
        """Count a finished job's files against max_saved_bytes, then delete the oldest other finished jobs while
        the results kept take more (the newest is always kept, so what was just made can be fetched).
        Returns how many went early."""
        job.size = sum(path.stat().st_size for path in job.folder.iterdir() if path.is_file())
        if self.max_saved_bytes is None:
            return 0
        with self.lock:
            finished = sorted((j for j in self.jobs.values() if j.finished and j is not job), key=lambda j: j.created)
            total = job.size + sum(j.size for j in finished)
            early = []
            while finished and total > self.max_saved_bytes:
                oldest = finished.pop(0)
                total -= oldest.size
                early.append(oldest)
        for old in early:
            self.remove(old)
        return len(early)

    def saved_bytes(self) -> int:
        with self.lock:
            return sum(job.size for job in self.jobs.values() if job.finished)

    def remove(self, job: Job) -> None:
        with self.lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def clear(self) -> tuple[int, bool]:
        """When the server stops: delete every job's folder (uploads, results, the partial files of a job cut
        short), then the marker and the run folder if nothing else is in it. (jobs whose folders were deleted,
        run folder removed). Once only; later calls find nothing."""
        with self.lock:
            jobs, self.jobs = list(self.jobs.values()), {}
            first, self.closed = not self.closed, True
        deleted = 0
        for job in jobs:
            if job.folder.exists():
                deleted += 1
                shutil.rmtree(job.folder, ignore_errors=True)
        if first:
            self.marker.close()  # the lock goes with it
            (self.root / MARKER).unlink(missing_ok=True)
        try:
            self.root.rmdir()  # only when empty: files someone else put there stay, and so does the folder
        except OSError:
            pass
        return deleted, not self.root.exists()


def newest_change(folder: Path) -> float:
    """When a job folder or a file in it last changed (wall clock): a job is as old as its last write."""
    times = [folder.stat().st_mtime]
    for path in folder.iterdir():
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            pass
    return max(times)


def sweep_earlier_runs(project: Path, keep_s: float, now: float | None = None) -> tuple[int, list[Path]]:
    """At start: delete the job folders that earlier serve.py runs under `project` left behind (killed before
    they could clean up) once older than `keep_s`, and their run folders once nothing else is in them.

    Only run folders with a MARKER that no running server holds are looked into, and in them only folders
    named like a job id. Returns (job folders deleted, run folders removed)."""
    now = time.time() if now is None else now
    deleted, removed = 0, []
    try:
        runs = sorted(path for path in project.iterdir() if (path / MARKER).is_file() and not path.is_symlink())
    except OSError:  # no project folder yet
        return 0, []
    for run in runs:
        try:
            with open(run / MARKER, "a", encoding="utf-8") as marker:
                if not lock(marker):
                    continue  # a server still running there: its jobs are its own to expire
                for folder in run.iterdir():
                    if JOB_ID.match(folder.name) and folder.is_dir() and not folder.is_symlink() \
                            and now - newest_change(folder) > keep_s:
                        shutil.rmtree(folder, ignore_errors=True)
                        deleted += not folder.exists()
                if [path.name for path in run.iterdir()] == [MARKER]:
                    (run / MARKER).unlink()
                    run.rmdir()
                    removed.append(run)
        except OSError:  # not ours to read, or changed under us: left as it is
            continue
    return deleted, removed
