"""What the bench scripts share (each runs as `python bench/<name>.py`, which puts this folder on the path)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# maskdet is imported inside the functions that use it, so importing this module needs nothing but the
# standard library, whichever folder the bench was started from.


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


def read_photo(path: str | Path) -> np.ndarray:
    """A photo a bench runs on, through detect.py's bounded reader (maskdet.inference.sources.read_image): a
    missing, corrupt, truncated or oversized one stops the bench with one line naming it, as a figure measured
    on fewer photos than asked is not the figure."""
    from maskdet.errors import UserError
    from maskdet.inference.sources import SourceError, read_image

    try:
        return read_image(Path(path))
    except SourceError as exc:
        raise UserError(str(exc)) from None


def read_photos(folder: str | Path) -> list[np.ndarray]:
    """Every photo directly in folder (read_photo each), at least one."""
    from maskdet.errors import UserError
    from maskdet.fileio import list_images

    if not Path(folder).is_dir():
        raise UserError("no such folder", folder)
    paths = list_images(folder)
    if not paths:
        raise UserError("the folder holds no images", folder)
    return [read_photo(p) for p in paths]


def write_json(path: str | Path, figures: object) -> None:
    """The figures as indented JSON, written atomically (a bench stopped mid-write leaves the old file whole)."""
    import json

    from maskdet.fileio import atomic_write_text

    atomic_write_text(Path(path), json.dumps(figures, indent=2) + "\n")
