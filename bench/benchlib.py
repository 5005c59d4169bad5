"""What the bench scripts share (each runs as `python bench/<name>.py`, which puts this folder on the path)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """'Intel(R) Xeon(R) Processor, 2 cores': the CPU a figure came from, quoted beside the numbers."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"
