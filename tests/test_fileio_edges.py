"""maskdet.fileio at its edges: where the temporary file lives, what a failed write leaves, new folders,
digests, and reading a user's file (found by mutation testing, bench/mutation.py)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from maskdet import fileio
from maskdet.errors import UserError
from maskdet.fileio import (
    TEXT_FILE_LIMIT,
    FileTooLarge,
    atomic_copy,
    atomic_symlink,
    atomic_write_bytes,
    atomic_write_text,
    content_digest,
    read_bytes_bounded,
    read_user_text,
)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def replaced(monkeypatch) -> list[tuple[str, str]]:
    """Every (source, destination) os.replace was asked for, the replace still done."""
    calls: list[tuple[str, str]] = []
    real = os.replace

    def spy(src, dst, *args, **kwargs):
        calls.append((str(src), str(dst)))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", spy)
    return calls


@pytest.mark.parametrize("write", [lambda p: atomic_write_bytes(p, b"x"), lambda p: atomic_write_text(p, "x"),
                                   lambda p: atomic_copy(__file__, p)], ids=["bytes", "text", "copy"])
def test_the_temporary_file_is_hidden_beside_the_target_and_renamed_onto_it(tmp_path, replaced, write):
    # Beside it: a rename within one file system is atomic. Hidden (.name.*.tmp): image listings skip it.
    target = tmp_path / "labels" / "photo.txt"
    write(target)
    (src, dst), = replaced
    tmp = Path(src)
    assert dst == str(target) and tmp.parent == target.parent
    assert tmp.name.startswith(".photo.txt.") and tmp.name.endswith(".tmp") and tmp.name != ".photo.txt..tmp"
    assert not tmp.exists() and sorted(p.name for p in target.parent.iterdir()) == ["photo.txt"]


def test_a_symlink_is_made_under_a_hidden_name_beside_it_and_renamed_onto_it(tmp_path, replaced):
    atomic_symlink(__file__, tmp_path / "a" / "b" / "last")
    (src, dst), = replaced
    assert Path(src).parent == tmp_path / "a" / "b" and Path(src).name.startswith(".last.")
    assert (tmp_path / "a" / "b" / "last").resolve() == Path(__file__).resolve()


def test_a_write_that_fails_before_any_byte_leaves_no_file_and_no_open_descriptor(tmp_path, monkeypatch):
    def refuse(fd, mode):
        raise PermissionError("no chmod here")

    monkeypatch.setattr(os, "fchmod", refuse)
    before = open_fds()
    with pytest.raises(PermissionError, match="no chmod here"):  # the real error, not one from the clean-up
        atomic_write_bytes(tmp_path / "out.txt", b"data")
    assert list(tmp_path.iterdir()) == []
    assert open_fds() == before


@pytest.mark.parametrize("fails", ["copyfile", "replace"])
def test_a_copy_that_fails_leaves_the_target_untouched_and_no_temporary_file(tmp_path, monkeypatch, fails):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"the user's")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.shutil if fails == "copyfile" else os, fails, boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_copy(__file__, target)
    assert target.read_bytes() == b"the user's" and [p.name for p in tmp_path.iterdir()] == ["out.jpg"]


def test_copies_and_links_create_missing_parent_folders(tmp_path):
    atomic_copy(__file__, tmp_path / "a" / "b" / "copy.py")
    atomic_symlink(__file__, tmp_path / "c" / "d" / "link")
    assert (tmp_path / "a" / "b" / "copy.py").read_bytes() == Path(__file__).read_bytes()
    assert (tmp_path / "c" / "d" / "link").is_symlink()


def test_text_is_written_as_utf8(tmp_path):
    atomic_write_text(tmp_path / "t.txt", "masque portée ✓")
    assert (tmp_path / "t.txt").read_bytes() == "masque portée ✓".encode()


def test_a_content_digest_is_16_bytes_of_blake2b_and_tells_contents_apart():
    assert content_digest(b"photo").hex() == "42bc7252ed9d80afd43e4573d5391af1"  # blake2b, digest_size=16
    assert content_digest(b"photo") == content_digest(bytearray(b"photo"))
    assert content_digest(b"photo") != content_digest(b"photo2") and len(content_digest(b"")) == 16


def test_reading_a_users_file_gives_its_utf8_text(tmp_path):
    path = tmp_path / "names.txt"
    path.write_bytes("with_mask\nportée\n".encode())
    assert read_user_text(path) == "with_mask\nportée\n"
    assert read_user_text(str(path)) == "with_mask\nportée\n"


def test_a_missing_file_is_a_one_line_error_naming_it(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UserError) as err:
        read_user_text(missing)
    assert str(err.value) == f"{missing}: file not found" and err.value.path == missing
    with pytest.raises(UserError) as err:
        read_user_text(missing, missing="no data.yaml here")
    assert str(err.value) == f"{missing}: no data.yaml here"


@pytest.mark.parametrize("kind", ["folder", "not utf-8"])
def test_an_unreadable_file_is_a_one_line_error_naming_it_and_why(tmp_path, kind):
    path = tmp_path / "data.yaml"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"names: [\xff\xfe]\n")
    with pytest.raises(UserError) as err:
        read_user_text(path)
    message = str(err.value)
    assert message.startswith(f"{path}: cannot read: ") and err.value.path == path and "\n" not in message
    assert ("directory" in message) if kind == "folder" else ("utf-8" in message)


def test_a_file_past_its_limit_is_refused_from_its_size_before_any_of_it_is_read(tmp_path, tools):
    """A terabyte named photo.jpg would take all the memory if read whole to find out it is no photo."""
    huge = tools.sparse_file(tmp_path / "photo.jpg", 1 << 40)
    with pytest.raises(FileTooLarge) as err:
        read_bytes_bounded(huge, 1 << 20)
    assert isinstance(err.value, OSError)  # every reader that skips an unreadable file skips this one too
    assert err.value.strerror == "1,099,511,627,776 bytes, over the 1,048,576-byte limit for a file of this kind"
    assert read_bytes_bounded(tools.sparse_file(tmp_path / "exact.jpg", 1 << 20), 1 << 20) == bytes(1 << 20)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_file_whose_size_says_nothing_is_read_only_up_to_its_limit():
    """A device or a pipe reports size 0: it is read to one byte past the limit, no further."""
    with pytest.raises(FileTooLarge, match="it goes on, over the 4,096-byte limit"):
        read_bytes_bounded("/dev/zero", 4096)


def test_an_oversized_text_file_is_a_one_line_error_naming_it(tmp_path, tools):
    big = tools.sparse_file(tmp_path / "classes.txt", TEXT_FILE_LIMIT + 1)
    with pytest.raises(UserError) as err:
        read_user_text(big)
    assert str(err.value) == (f"{big}: cannot read: {TEXT_FILE_LIMIT + 1:,} bytes, over the {TEXT_FILE_LIMIT:,}-byte "
                              "limit for a file of this kind")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_at_once_not_waited_on(tmp_path):
    """Opening a FIFO for reading waits for a writer: voc2yolo.py hung for ever on one named a.xml."""
    fifo = tmp_path / "a.xml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_bytes_bounded(fifo, 4096)
        except OSError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)  # daemon: a reader stuck on the pipe cannot hold up pytest
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "still waiting on the pipe"
    assert outcome and "not a regular file (a named pipe)" in outcome[0].strerror
    assert outcome[0].filename == str(fifo)


@pytest.mark.parametrize("write", ["text", "copy"])
def test_an_output_path_that_is_a_folder_is_named_not_the_temporary_file(tmp_path, write):
    target = tmp_path / "X.txt"
    target.mkdir()
    source = tmp_path / "source.txt"
    source.write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(OSError) as err:
        atomic_write_text(target, "x") if write == "text" else atomic_copy(source, target)
    assert err.value.filename == str(target) and "directory" in err.value.strerror.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.txt", "source.txt"], "no temporary file left"
