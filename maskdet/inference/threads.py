"""Overlap decoding and encoding with inference: OpenCV releases the GIL while it works."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterator[T], size: int = 4) -> Iterator[T]:
    """Produce items on a thread, at most `size` ahead; errors are re-raised in the consumer.

    Only for files: for a live source, frames queued ahead would be frames shown late.
    """
    buffer: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, which raises it
            buffer.put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                close()
            buffer.put(_END)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # drain so a producer blocked on put() can finish
            try:
                buffer.get(timeout=0.1)
            except queue.Empty:
                pass


class BackgroundWorker:
    """Run `handle(item)` for each submitted item on one thread, in order; close() waits for all."""

    def __init__(self, handle: Callable[[object], None], size: int = 8, name: str = "writer"):
        self.handle = handle
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if self.error is None:
                try:
                    self.handle(item)
                except BaseException as exc:  # reported on the next submit or at close
                    self.error = exc

    def submit(self, item: object) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def close(self) -> None:
        self.queue.put(_END)
        self.thread.join()
        if self.error is not None:
            raise self.error
