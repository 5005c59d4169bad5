"""Atomic file writes: a reader (or an interrupted run) never sees a half-written file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def _current_umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file in the destination folder (so os.replace is a same-filesystem rename), with the mode
    the final file should have: its own when it is being replaced, else what an ordinary open() would give.

    mkstemp makes every file 0600 whatever the umask; left so, a labels folder or a run folder written
    through here would be unreadable to the user's group, and `check.py --fix` would narrow a 0644 file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_current_umask()
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write data to path via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    """Copy src to dst (contents and timestamps) so that dst is either absent or complete."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(dst)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)  # contents only: the mode stays an ordinary one (a read-only source gives a writable copy)
        stat = os.stat(src)
        os.utime(tmp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_symlink(src: str | Path, dst: str | Path) -> None:
    """Point dst at the absolute path of src, replacing any previous link in one step."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.lnk")
    tmp.unlink(missing_ok=True)
    os.symlink(Path(src).resolve(), tmp)
    try:
        os.replace(tmp, dst)
    except BaseException:  # like the writes above: an interrupted link leaves no temporary link behind
        tmp.unlink(missing_ok=True)
        raise


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in folder, sorted by name (hidden files skipped)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image(p) and not p.name.startswith("."))


def next_run_dir(project: str | Path, name: str = "exp", exist_ok: bool = False) -> Path:
    """runs/<task>/exp, exp2, exp3 ... as YOLOv5 numbers them; created before it is returned."""
    project = Path(project)
    candidate = project / name
    if not exist_ok:
        n = 2
        while candidate.exists():
            candidate = project / f"{name}{n}"
            n += 1
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate
