"""What the bench scripts share (each runs as `python bench/<name>.py`, which puts this folder on the path)."""

from __future__ import annotations

import os
import platform
import time
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


SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_flags() -> str:
    """The instruction sets that decide INT8 and bf16 speed (VNNI, AMX), as /proc/cpuinfo lists them."""
    try:
        flags = next((ln.split(":", 1)[1].split() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("flags")), [])
    except OSError:
        return "unknown"
    return " ".join(f for f in SIMD_FLAGS if f in flags) or "none of " + " ".join(SIMD_FLAGS)


def timed(fn, *args):
    """fn(*args), and the wall and CPU milliseconds it took: (result, wall_ms, cpu_ms). CPU time counts every
    thread of this process, so a runtime that spins its threads shows it."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, (time.perf_counter() - w) * 1e3, (time.process_time() - c) * 1e3
