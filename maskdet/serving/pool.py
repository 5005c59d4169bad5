"""A bounded pool of per-frame steps (each with its model copy): a full pool says so at once (503) instead of queueing without end."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from maskdet.pipeline.step import Pipeline


class PoolFull(Exception):
    """Every worker is busy and the waiting room is full: answer 503 with Retry-After."""


class ModelPool:
    """`workers` pipelines (each its own model copy), each used by one thread at a time, and at most `backlog` requests waiting.

    Requests take a ticket first (never blocking: no ticket, PoolFull); with a ticket they wait
    for a free detector. So memory and delay stay bounded however many clients arrive.
    """

    def __init__(self, load: Callable[[], Pipeline], workers: int = 1, backlog: int | None = None):
        self.workers = max(1, workers)
        self.capacity = self.workers + (self.workers if backlog is None else max(0, backlog))
        self.tickets = threading.BoundedSemaphore(self.capacity)
        self.free: queue.Queue[Pipeline] = queue.Queue()
        first = load()
        self.names, self.imgsz = first.names, first.imgsz
        self.free.put(first)
        for _ in range(self.workers - 1):
            self.free.put(load())

    @contextmanager
    def ticket(self) -> Iterator[None]:
        """A place in the pool, or PoolFull right away."""
        if not self.tickets.acquire(blocking=False):
            raise PoolFull
        try:
            yield
        finally:
            self.tickets.release()

    @contextmanager
    def detector(self) -> Iterator[Pipeline]:
        """Wait for a free detector (hold a ticket first, so the wait is bounded)."""
        detector = self.free.get()
        try:
            yield detector
        finally:
            self.free.put(detector)
