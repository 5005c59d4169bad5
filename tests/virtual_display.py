"""A fresh Xvfb for the tests that open real windows (detect.py --show, labelImg), on a display number no
other X server uses, returned only once it accepts connections. Shared so that both window tests start it
the same, robust way."""

from __future__ import annotations

import os
import random
import re
import select
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STEP_TIMEOUT = 15.0


def free_display_number() -> int:
    """A display number no X server uses. Xvfb's lock file guards only this filesystem's /tmp, but
    clients connect to the abstract socket @/tmp/.X11-unix/X<n> first, which a server in another
    container on the same network namespace may hold; /proc/net/unix lists those too. A random
    start keeps test runs in parallel apart (and away from :0, where a person's own Xvfb usually is)."""
    unix_sockets = Path("/proc/net/unix")
    taken = set(re.findall(r"/tmp/\.X11-unix/X(\d+)", unix_sockets.read_text())) if unix_sockets.exists() else set()
    start = random.randrange(100, 900)
    for number in range(start, start + 100):
        if str(number) not in taken and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number")


def start_xvfb(log: Path, screen: tuple[int, int]) -> tuple[subprocess.Popen, str, int] | None:
    """Start Xvfb on a free display and wait until it accepts connections (-displayfd: it writes the
    number then; the pipe stays open while it runs, it fails on a closed one). Returns the server,
    its display and the pipe, or None if it did not come up (another one took the number meanwhile).
    The screen size is checked through a client: an unusual size proves clients reach this server."""
    number = free_display_number()
    read_fd, write_fd = os.pipe()
    command = ["Xvfb", f":{number}", "-displayfd", str(write_fd), "-nolisten", "tcp",
               "-screen", "0", f"{screen[0]}x{screen[1]}x24"]
    with open(log, "ab") as log_file:
        server = subprocess.Popen(command, pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)
    os.close(write_fd)
    ready, _, _ = select.select([read_fd], [], [], 30)
    display = f":{number}"
    if ready and os.read(read_fd, 16).strip() == str(number).encode():
        size = subprocess.run(["xdotool", "getdisplaygeometry"], env={**os.environ, "DISPLAY": display},
                              capture_output=True, text=True, timeout=STEP_TIMEOUT).stdout.split()
        if size == [str(screen[0]), str(screen[1])] and server.poll() is None:
            return server, display, read_fd
    stop(server)
    os.close(read_fd)
    return None


@contextmanager
def virtual_display(log: Path, screen: tuple[int, int]) -> Iterator[str]:
    """A running Xvfb's display (":N") for the block; three tries; stopped at the end."""
    for _ in range(3):
        started = start_xvfb(log, screen)
        if started:
            break
    else:
        raise RuntimeError(f"Xvfb did not start: {log.read_text(errors='replace')[-2000:]}")
    server, display, pipe = started
    try:
        yield display
    finally:
        stop(server)
        os.close(pipe)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
