"""Hold Ctrl-C and SIGTERM across a short step that must not be cut in half; and end a process whose
interrupted work is still inside native code without crashing at exit."""

from __future__ import annotations

import os
import signal
import sys
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


# Threads left running inside native code (FFmpeg opening a stream) when the wait for them was given up:
# Ctrl-C, or a timeout. At interpreter shutdown such a thread can call back into Python (PyAV's interrupt
# callback) while Python is being torn down, and the process dies with SIGSEGV after its summary (exit -11, not
# 130). `exit_code` ends such a process at once, once everything is written and flushed.
STRANDED_THREADS: set[threading.Thread] = set()


def strand(thread: threading.Thread) -> None:
    """Note a thread whose native work was abandoned (it may still be running)."""
    STRANDED_THREADS.add(thread)


def exit_code(code: int) -> int:
    """`code`, returned to the caller as usual; but where an abandoned native call is still running, the
    process ends here with it (streams flushed; every sink was closed by the command itself)."""
    if any(thread.is_alive() for thread in STRANDED_THREADS):
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):  # wrappers, and what they wrap
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):  # a closed or broken stream: nothing more to say on it
                pass
        os._exit(code)
    return code
