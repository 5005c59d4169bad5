"""maskdet.fileio: atomic writes, image listing, run folders.

An interrupted write (Ctrl-C, a full disk) leaves the destination with its old content or absent,
never half-written, and leaves no temporary files behind.
"""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maskdet import fileio
from maskdet.fileio import atomic_copy, atomic_symlink, atomic_write_bytes, atomic_write_text, list_images, next_run_dir


def names(folder) -> list[str]:
    """Every entry, hidden ones (our temp files) included."""
    return sorted(p.name for p in folder.iterdir())


# --- file modes: what an ordinary write would give ------------------------------------------------


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_an_ordinary_write_gives(tmp_path, umask, mask, expected):
    umask(mask)
    atomic_write_text(tmp_path / "new.txt", "x")
    atomic_write_bytes(tmp_path / "new.jpg", b"x")
    assert mode(tmp_path / "new.txt") == expected
    assert mode(tmp_path / "new.jpg") == expected


@pytest.mark.parametrize("own_mode", [0o640, 0o664, 0o600])
def test_a_rewritten_file_keeps_its_own_mode(tmp_path, umask, own_mode):
    umask(0o022)
    target = tmp_path / "label.txt"
    target.write_text("old")
    target.chmod(own_mode)
    atomic_write_text(target, "new")
    assert mode(target) == own_mode and target.read_text() == "new"


def test_a_copy_of_a_read_only_file_is_an_ordinary_writable_file(tmp_path, umask):
    umask(0o022)
    src = tmp_path / "shared.png"
    src.write_bytes(b"png")
    src.chmod(0o444)
    os.utime(src, (1_000_000, 1_000_000))
    atomic_copy(src, tmp_path / "copy" / "shared.png")
    copy = tmp_path / "copy" / "shared.png"
    assert mode(copy) == 0o644 and copy.read_bytes() == b"png"
    assert copy.stat().st_mtime == 1_000_000  # timestamps still travel with the copy


# --- atomic_write ------------------------------------------------------------------------------


def test_write_creates_parents_and_writes_utf8(tmp_path):
    target = tmp_path / "a" / "b" / "labels.txt"
    atomic_write_text(target, "0 0.5 0.5 0.2 0.2\nmaské\n")
    assert target.read_bytes() == "0 0.5 0.5 0.2 0.2\nmaské\n".encode()
    assert names(target.parent) == ["labels.txt"]


def test_write_replaces_existing_content(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old content that is longer than the new")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert names(tmp_path) == ["x.txt"]


@settings(max_examples=30, deadline=None, database=None)
@given(st.binary(max_size=2000))
def test_write_round_trips_any_bytes(tmp_path_factory, data):
    target = tmp_path_factory.mktemp("w") / "f.bin"
    atomic_write_bytes(target, data)
    assert target.read_bytes() == data


class Interrupt(KeyboardInterrupt):
    """Ctrl-C, raised by a patched system call."""


def interrupt(*_args, **_kwargs):
    raise Interrupt


def interrupt_once_created(monkeypatch) -> None:
    """os.open creates the file, then Ctrl-C arrives (tempfile.mkstemp left such a file: 3 runs in 4 of a stopped
    split.py did)."""
    real_open = os.open

    def open_then_interrupt(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if flags & os.O_CREAT:
            os.close(fd)
            raise Interrupt
        return fd

    monkeypatch.setattr(os, "open", open_then_interrupt)


@pytest.mark.parametrize("existed", [True, False], ids=["old-file", "new-file"])
@pytest.mark.parametrize("where", ["just created", "mode set", "replace", "fsync", "mid-write"])
def test_interrupted_write_leaves_old_content_or_nothing_and_no_temp_file(tmp_path, monkeypatch, existed, where):
    target = tmp_path / "labels.txt"
    if existed:
        target.write_text("old\n")
    if where == "just created":  # Ctrl-C the moment the temporary file exists, before its name is handed back
        interrupt_once_created(monkeypatch)
    elif where == "mode set":
        monkeypatch.setattr(os, "fchmod", interrupt)
    elif where == "replace":
        monkeypatch.setattr(os, "replace", interrupt)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", interrupt)
    else:  # half the data reaches the temp file, then Ctrl-C
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()

            def write(self, data):
                self.fh.write(data[: len(data) // 2])
                self.fh.flush()
                raise Interrupt

        monkeypatch.setattr(os, "fdopen", lambda fd, mode, **kw: HalfWriter(real_fdopen(fd, mode, **kw)))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new content\n" * 100)
    monkeypatch.undo()
    if existed:
        assert target.read_text() == "old\n"
    else:
        assert not target.exists()
    assert names(tmp_path) == (["labels.txt"] if existed else [])


def test_failed_rename_is_reported_and_cleaned_up(tmp_path):
    (tmp_path / "labels.txt").mkdir()  # a folder where the file should go: os.replace fails
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "labels.txt", "x")
    assert names(tmp_path) == ["labels.txt"]


# --- atomic_copy -------------------------------------------------------------------------------


def test_copy_copies_content_and_timestamps(tmp_path, make_image):
    src = make_image(tmp_path / "src" / "a.png")
    os.utime(src, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    dst = tmp_path / "out" / "train" / "a.png"
    atomic_copy(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert dst.stat().st_mtime_ns == src.stat().st_mtime_ns
    assert names(dst.parent) == ["a.png"]


def test_a_temporary_file_that_cannot_be_made_is_reported_by_the_files_own_name(tmp_path, monkeypatch):
    """A read-only labels folder: the error names the label file, not '.a.txt.5f3c9d1e.tmp'."""
    real_open = os.open

    def refused(path, flags, *args, **kwargs):  # what the kernel says in a read-only folder (root is never refused)
        if flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(PermissionError) as error:
        atomic_write_text(tmp_path / "a.txt", "0 0.5 0.5 0.1 0.1\n")
    assert error.value.filename == str(tmp_path / "a.txt")


@pytest.mark.parametrize("existed", [True, False], ids=["old-file", "new-file"])
@pytest.mark.parametrize("where", ["just created", "mid-copy"])
def test_interrupted_copy_leaves_old_content_or_nothing_and_no_temp_file(tmp_path, monkeypatch, existed, where):
    src = tmp_path / "src.bin"
    src.write_bytes(b"N" * 100_000)
    out = tmp_path / "out"
    out.mkdir()
    dst = out / "dst.bin"
    if existed:
        dst.write_bytes(b"old")

    def half_copy(a, b, **_kwargs):
        with open(a, "rb") as fa, open(b, "wb") as fb:
            fb.write(fa.read(50_000))
        raise Interrupt

    if where == "just created":  # Ctrl-C the moment the temporary file exists
        interrupt_once_created(monkeypatch)
    else:
        monkeypatch.setattr(shutil, "copyfile", half_copy)
    with pytest.raises(KeyboardInterrupt):
        atomic_copy(src, dst)
    monkeypatch.undo()
    assert names(out) == (["dst.bin"] if existed else [])
    if existed:
        assert dst.read_bytes() == b"old"


def test_copy_of_a_missing_source_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing.png", tmp_path / "out" / "a.png")
    assert names(tmp_path / "out") == []


# --- atomic_symlink ----------------------------------------------------------------------------


def test_symlink_points_at_the_absolute_source(tmp_path, monkeypatch):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"png")
    monkeypatch.chdir(tmp_path)
    atomic_symlink("photos/a.png", tmp_path / "data" / "a.png")  # a relative source still works from elsewhere
    link = tmp_path / "data" / "a.png"
    assert link.is_symlink() and os.path.isabs(os.readlink(link))
    assert link.read_bytes() == b"png"


def test_symlink_replaces_an_earlier_link_or_file(tmp_path):
    for name in ("one", "two"):
        (tmp_path / name).write_text(name)
    dst = tmp_path / "out" / "link"
    dst.parent.mkdir()
    dst.write_text("a plain file")
    atomic_symlink(tmp_path / "one", dst)
    atomic_symlink(tmp_path / "two", dst)
    assert dst.read_text() == "two"
    assert names(dst.parent) == ["link"]


@pytest.mark.parametrize("existed", [True, False], ids=["old-link", "new-link"])
def test_interrupted_symlink_leaves_no_temp_link(tmp_path, monkeypatch, existed):
    (tmp_path / "old").write_text("old")
    (tmp_path / "new").write_text("new")
    out = tmp_path / "out"
    out.mkdir()
    dst = out / "a.png"
    if existed:
        dst.symlink_to(tmp_path / "old")
    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_symlink(tmp_path / "new", dst)
    monkeypatch.undo()
    assert names(out) == (["a.png"] if existed else [])
    if existed:
        assert dst.read_text() == "old"


# --- listing and run folders -------------------------------------------------------------------


def test_list_images_sorted_skipping_hidden_non_images_and_folders(tmp_path):
    for name in ("b.JPG", "a.png", "c.webp", ".a.png.x1.tmp", ".hidden.png", "notes.txt", "d.jpeg", "e.gif"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.JPG", "c.webp", "d.jpeg"]


def test_image_suffixes_cover_what_ultralytics_trains_on():
    assert {".jpg", ".jpeg", ".png", ".bmp", ".webp"} <= fileio.IMAGE_SUFFIXES


def test_next_run_dir_numbers_like_yolov5(tmp_path):
    assert next_run_dir(tmp_path / "runs" / "train") == tmp_path / "runs" / "train" / "exp"
    assert next_run_dir(tmp_path / "runs" / "train") == tmp_path / "runs" / "train" / "exp2"
    assert next_run_dir(tmp_path / "runs" / "train") == tmp_path / "runs" / "train" / "exp3"
    assert next_run_dir(tmp_path / "runs" / "train", "mask") == tmp_path / "runs" / "train" / "mask"
    assert (tmp_path / "runs" / "train" / "exp3").is_dir()


def test_next_run_dir_exist_ok_reuses_the_name(tmp_path):
    first = next_run_dir(tmp_path, "exp")
    (first / "weights").mkdir()
    assert next_run_dir(tmp_path, "exp", exist_ok=True) == first
    assert (first / "weights").is_dir()
