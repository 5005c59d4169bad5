"""Hold Ctrl-C and SIGTERM across a short step that must not be cut in half."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Delay Ctrl-C and SIGTERM until the block ends, then deliver the first that came.

    A frame's detections go to several sinks (CSV, JSON, labels, video) one after the other; a
    Ctrl-C between two of them would leave the CSV a frame ahead of the JSON. Handlers can only
    be changed from the main thread: elsewhere the block runs unprotected, as before.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in HELD_SIGNALS}
    previous = {sig: handler for sig, handler in previous.items() if handler is not None}  # None: set outside Python
    for sig in previous:
        signal.signal(sig, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if pending:
        signal.raise_signal(pending[0])  # the handler the program chose now acts on it
