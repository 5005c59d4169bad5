"""Atomic file writes (a reader, or an interrupted run, never sees a half-written file) and bounded reads
(a file from outside is never read past the size its kind ever needs)."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from maskdet.errors import UserError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
TEXT_FILE_LIMIT = 16 << 20  # bytes of a label, VOC or list file: real ones hold kilobytes (16 MiB: ~400,000 boxes)


class FileTooLarge(OSError):
    """A file bigger than its kind ever is, refused before it is read. An OSError, so every reader that
    already skips an unreadable file (and prints its strerror) skips this one too, with the reason."""


def open_for_reading(path: str | Path):
    """A binary file object for `path`, refusing a named pipe (or socket): opening one for reading waits for a writer
    that may never come (voc2yolo.py hung on a FIFO named a.xml). Opened without blocking to find out, then read as
    usual."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise OSError(errno.EINVAL, "not a regular file (a named pipe): it is not read", str(path))
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes_bounded(path: str | Path, limit: int) -> bytes:
    """The bytes of a file from outside, never more than `limit` of them in memory: a 30 GB file named
    photo.jpg (or a device, whose size stat does not tell) is refused, not read whole and then found corrupt."""
    with open_for_reading(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        shown = f"{size:,} bytes" if size > limit else "it goes on"
        raise FileTooLarge(errno.EFBIG, f"{shown}, over the {limit:,}-byte limit for a file of this kind")
    return data


def _current_umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


@contextmanager
def _written_beside(path: Path) -> Iterator[tuple[int, str]]:
    """(fd, name) of a new temporary file in the destination's folder, renamed over `path` when the block ends, and
    removed if it raises (Ctrl-C included).

    Its name is chosen before it is created, inside the one `try` that removes it: an interrupt at any point, even
    right after the file appears, leaves no '.NAME.xxxxxxxx.tmp' behind (tempfile.mkstemp creates the file before it
    returns its name). The mode is what the final file should have: its own when it is being replaced, else what an
    ordinary open() would give (mkstemp's 0600 would leave a labels folder or a run folder unreadable to the user's
    group, and `check.py --fix` would narrow a 0644 file). An error names `path`, never the temporary file."""
    tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:  # a read-only folder: the user's file, not the name it would have had on the way
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        try:
            os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_current_umask())
            yield fd, tmp
        finally:
            os.close(fd)
        _replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_user_text(path: str | Path, missing: str = "file not found", limit: int = TEXT_FILE_LIMIT) -> str:
    """A UTF-8 file the user named, of at most `limit` bytes; a missing, unreadable or oversized one is a
    one-line UserError naming it."""
    path = Path(path)
    try:
        return read_bytes_bounded(path, limit).decode("utf-8")
    except FileNotFoundError:
        raise UserError(missing, path) from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", path) from None
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read: {exc}", path) from None


_COMMENT = re.compile(r"(?:^|\s)#.*")  # '#' at the start or after a space, as in a shell: IMG#7.png is a name


def read_list_lines(path: str | Path, missing: str = "file not found") -> list[tuple[int, str]]:
    """(line number, entry) of a list file the user wrote or a tool exported (see list_entries)."""
    return list_entries(read_user_text(path, missing))


def list_entries(text: str) -> list[tuple[int, str]]:
    """(line number, entry) of a list's text: one entry a line, blank lines skipped, '#' after a space (or at the
    start) begins a comment, a UTF-8 byte-order mark (Windows' Notepad) is ignored."""
    lines = enumerate(text.removeprefix("\ufeff").splitlines(), 1)
    entries = ((number, _COMMENT.sub("", line).strip()) for number, line in lines)
    return [(number, entry) for number, entry in entries if entry]


def _replace(tmp: str | Path, path: Path) -> None:
    """os.replace, with an error naming `path`, the user's, not the temporary file (an output path that is a
    folder said '.X.txt.ozvv.tmp: Is a directory')."""
    try:
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename) == Path(tmp):
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write data to path via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _written_beside(path) as (fd, _tmp):
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    """Copy src to dst (contents and timestamps) so that dst is either absent or complete."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with _written_beside(dst) as (_fd, tmp):
        shutil.copyfile(src, tmp)  # contents only: the mode stays an ordinary one (a read-only source gives a writable copy)
        times = os.stat(src)
        os.utime(tmp, ns=(times.st_atime_ns, times.st_mtime_ns))


def atomic_symlink(src: str | Path, dst: str | Path) -> None:
    """Point dst at the absolute path of src, replacing any previous link in one step."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.lnk")
    tmp.unlink(missing_ok=True)
    os.symlink(Path(src).resolve(), tmp)
    try:
        _replace(tmp, dst)
    except BaseException:  # like the writes above: an interrupted link leaves no temporary link behind
        tmp.unlink(missing_ok=True)
        raise


def content_digest(data: bytes) -> bytes:
    """What makes two files the same photo whatever their names: a digest of their bytes."""
    return hashlib.blake2b(data, digest_size=16).digest()


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
