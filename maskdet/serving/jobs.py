"""Per-job folders with names the server chooses, and their expiry.

A job (one photo saved for download, or one video) owns a folder `<root>/<32 hex digits>/`; the
files in it have fixed names the server picks. Clients only ever name a job id and one of those
names, both checked against what the server made, so no path from a client reaches the disk.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

JOB_ID = re.compile(r"^[0-9a-f]{32}$")


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
    files: dict[str, Path] = field(default_factory=dict)  # public name -> file in self.folder

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


class JobStore:
    """Jobs by id; folders older than `keep_s` are deleted (running jobs are left until they end)."""

    def __init__(self, root: Path, keep_s: float):
        self.root = root
        self.keep_s = keep_s
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

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
                del self.jobs[job.id]
        for job in old:
            shutil.rmtree(job.folder, ignore_errors=True)
        return len(old)

    def remove(self, job: Job) -> None:
        with self.lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)
