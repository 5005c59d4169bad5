"""How detect.py reads what --source names: .txt lists (comments, encodings, binary files, where a failing
entry came from), folders (broken links, subfolders), things that are not files (named pipes), URLs to
image and video files (read once, bounded) as against live streams (opened within --stream-timeout, and
Ctrl-C stops the opening), and the wording of what cannot be read."""

from __future__ import annotations

import functools
import http.server
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from maskdet.inference.sources import SourceError, read_image

# --- a real HTTP server on 127.0.0.1 -----------------------------------------------------------------------------


class Served:
    """http.server serving a folder on a thread; `requests` holds the path of every GET, in order."""

    def __init__(self, folder: Path):
        self.requests: list[str] = []
        served = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                served.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()  # bound and listening already: serve_forever only accepts

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator:
    """serve(folder) -> a started Served; shut down at teardown."""
    servers: list[Served] = []

    def start(folder: Path) -> Served:
        servers.append(Served(folder))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A socket listening on 127.0.0.1 that takes connections (the kernel's backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def accept_while_running(server: socket.socket, run, within_s: float = 120) -> socket.socket:
    """The connection detect.py makes to the server; a failure showing its output if it ended first."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if select.select([server], [], [], 0.5)[0]:
            return server.accept()[0]
        assert run.running(), f"detect.py ended before connecting: {run.stdout[-2000:]} {run.stderr[-2000:]}"
    raise AssertionError(f"detect.py did not connect within {within_s:g} s")


def skipped_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("skipped: ")]


# --- URLs to files, URLs to streams ------------------------------------------------------------------------------


def test_a_url_to_an_image_is_one_image_fetched_once_not_a_stream(detect, scripted_model, make_images, serve, tmp_path):
    make_images(tmp_path / "www", n=1, suffix=".jpg")
    server = serve(tmp_path / "www")
    proc = detect("--source", server.url("scene0.jpg"), "--weights", scripted_model([]), "--stream-timeout", "5",
                  timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "1 frames from 1 inputs" in proc.stdout and "reconnect" not in proc.stderr, proc.stdout + proc.stderr
    assert server.requests == ["/scene0.jpg"]
    assert (tmp_path / "runs" / "exp" / "scene0.jpg").is_file()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_a_url_to_a_video_file_is_read_once_to_its_end_not_reconnected(detect, scripted_model, make_video, serve,
                                                                        tmp_path):
    made = make_video(tmp_path / "clip.mp4", frames=30)
    (tmp_path / "www").mkdir()
    # As videos are put on the web: the index first (http.server cannot seek to an index at the end)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(made), "-c", "copy",
                    "-movflags", "+faststart", str(tmp_path / "www" / "clip.mp4")], check=True, timeout=60)
    server = serve(tmp_path / "www")
    proc = detect("--source", server.url("clip.mp4"), "--weights", scripted_model([]), "--stream-timeout", "5",
                  timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "30 frames from 1 inputs" in proc.stdout and "reconnect" not in proc.stderr, proc.stdout + proc.stderr
    assert "(frame 30/30)" in proc.stdout
    assert server.requests == ["/clip.mp4"]


def test_an_image_url_whose_size_is_over_the_limit_is_refused_from_its_header_unread(detect, scripted_model, tmp_path):
    sent: list[int] = []

    class Huge(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            try:
                self.wfile.write(b"\xff\xd8\xff" + bytes(1 << 20))  # a start, to show it is not read
                sent.append(1)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Huge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/big.jpg"
        proc = detect("--source", url, "--weights", scripted_model([]), timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {url}: cannot read this image") and "1,099,511,627,776 bytes, over the" in line, line


def test_an_image_url_that_trickles_is_given_up_after_its_time_bound(tmp_path):
    from maskdet.inference.sources import read_url_bytes  # here: the module's other tests run without it

    stop = threading.Event()

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            while not stop.is_set():  # a byte a tenth of a second, never the end
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                stop.wait(0.1)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match=r"did not arrive whole within 1 s"):
            read_url_bytes(f"http://127.0.0.1:{server.server_address[1]}/slow.jpg", 1 << 20, timeout=5, total=1)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 5


def test_ctrl_c_while_a_stream_is_opening_stops_at_once_with_130(background, detect, scripted_model, silent_server):
    url = f"http://127.0.0.1:{silent_server.getsockname()[1]}/"
    run = background(detect.argv("--source", url, "--weights", scripted_model([]), "--stream-timeout", "20"), "detect")
    connection = accept_while_running(silent_server, run)  # detect.py is opening the stream now
    try:
        asked = time.monotonic()
        run.signal(signal.SIGINT)
        status = run.wait(timeout=30)
        took = time.monotonic() - asked
    finally:
        connection.close()
    assert status == 130, (status, run.stdout, run.stderr)
    assert "interrupted: 0 frames from 1 inputs" in run.stdout and "Traceback" not in run.stderr, run.stdout + run.stderr
    assert took < 4, took  # not the open's timeout


def test_a_stream_server_that_takes_the_connection_and_never_answers_is_given_up_after_the_stream_timeout(detect, scripted_model,
                                                                                           silent_server, tools):
    url = f"http://127.0.0.1:{silent_server.getsockname()[1]}/"
    started = time.monotonic()
    proc = detect("--source", url, "--weights", scripted_model([]), "--stream-timeout", "2", timeout=60)
    line = tools.assert_one_line_error(proc, f"cannot open stream {url}", "no video came within 2 s",
                                       "took the connection but sent nothing")
    assert "--stream-timeout" in line
    assert time.monotonic() - started < 30


# --- lists ---------------------------------------------------------------------------------------------------------


def test_a_hash_inside_a_list_line_is_part_of_the_path_and_only_whole_lines_are_comments(detect, scripted_model,
                                                                                          make_images, tmp_path):
    photo = make_images(tmp_path / "in", n=1)[0].rename(tmp_path / "in" / "photo #1.png")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my photos\n   # an indented comment\n{photo}\n")
    proc = detect("--source", listing, "--weights", scripted_model([]))
    assert proc.returncode == 0, proc.stderr
    assert "1 frames from 1 inputs" in proc.stdout and str(photo) in proc.stdout, proc.stdout + proc.stderr


def test_a_list_saved_with_a_byte_order_mark_reads_its_first_line(detect, scripted_model, make_images, tmp_path):
    first, second = make_images(tmp_path / "in", n=2)
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"{first}\r\n{second}\r\n".encode("utf-8-sig"))  # as Windows Notepad saves it
    proc = detect("--source", listing, "--weights", scripted_model([]))
    assert proc.returncode == 0, proc.stderr
    assert "2 frames from 2 inputs" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("content, why", [
    (os.urandom(3_000_000), "not UTF-8 text"),
    (b"a.jpg\nb\x00c.jpg\n", "line 2 holds a NUL byte"),
])
def test_a_binary_file_named_txt_is_one_line_naming_it_as_not_a_text_list(content, why, detect, scripted_model,
                                                                          tmp_path, tools):
    listing = tmp_path / "bin.txt"
    listing.write_bytes(content)
    line = tools.assert_one_line_error(detect("--source", listing, "--weights", scripted_model([])),
                                       f"{listing}: not a text list of sources", why)
    assert len(line) < 400, line


def test_a_webcam_or_stream_from_a_list_that_cannot_be_opened_is_named_by_its_list_line(detect, scripted_model,
                                                                                        make_images, kit, tmp_path):
    photo = make_images(tmp_path / "in", n=1)[0]
    url = f"http://127.0.0.1:{kit.free_port()}/cam"
    listing = tmp_path / "list.txt"
    listing.write_text(f"{photo}\n7\n{url}\n")
    proc = detect("--source", listing, "--weights", scripted_model([]), timeout=60)
    assert proc.returncode == 1, proc.stderr
    skipped = skipped_lines(proc.stderr)
    assert len(skipped) == 2, proc.stderr
    assert f"{listing}:2: cannot open webcam 7" in skipped[0] and f"{listing}:3: cannot open stream {url}" in skipped[1]
    assert "1 frames from 3 inputs" in proc.stdout and "problems: 2 of 3" in proc.stdout, proc.stdout


def test_a_list_that_includes_itself_says_so_not_where_it_looked(detect, scripted_model, make_images, tmp_path):
    photo = make_images(tmp_path / "in", n=1)[0]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{photo}\nlist.txt\n")
    proc = detect("--source", listing, "--weights", scripted_model([]))
    [line] = [line for line in proc.stderr.splitlines() if f"{listing}:2" in line]
    assert "includes itself" in line and "looked for" not in line, line


# --- folders and things that are not files --------------------------------------------------------------------------


def test_a_folder_counts_a_broken_link_as_skipped_and_names_the_subfolders_it_does_not_read(detect, scripted_model,
                                                                                            make_images, tmp_path):
    make_images(tmp_path / "in", n=2)
    make_images(tmp_path / "in" / "more", n=1, suffix=".jpg")
    (tmp_path / "in" / "broken.png").symlink_to(tmp_path / "nowhere.png")
    proc = detect("--source", tmp_path / "in", "--weights", scripted_model([]))
    assert proc.returncode == 1, proc.stderr
    [skip] = skipped_lines(proc.stderr)
    assert str(tmp_path / "in" / "broken.png") in skip and "broken symbolic link" in skip, skip
    assert "2 frames from 3 inputs" in proc.stdout and "problems: 1 of 3 inputs" in proc.stdout, proc.stdout
    [note] = [line for line in proc.stderr.splitlines() if line.startswith("note: ") and "subfolder" in line]
    assert "1 subfolder" in note and "**" in note, note
    pattern = f"{tmp_path / 'in'}/**/*"  # the way the note gives to read them too
    assert pattern in note
    again = detect("--source", pattern, "--weights", scripted_model([]))
    assert "3 frames from 3 inputs" in again.stdout, again.stdout + again.stderr


def test_a_named_pipe_is_said_to_be_no_regular_file_not_missing(detect, scripted_model, tmp_path, tools):
    fifo = tmp_path / "camera.jpg"
    os.mkfifo(fifo)
    line = tools.assert_one_line_error(detect("--source", fifo, "--weights", scripted_model([]), timeout=60), fifo,
                                       "not a regular file", "named pipe")
    assert "no such file" not in line


# --- what cannot be read, in words -------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_an_audio_only_mp4_is_said_to_hold_no_video(detect, scripted_model, tmp_path, tools):
    audio = tmp_path / "song.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i", "sine=duration=1",
                    "-c:a", "aac", str(audio)], check=True, timeout=60)
    line = tools.assert_one_line_error(detect("--source", audio, "--weights", scripted_model([])), audio,
                                       "no video stream")
    assert "codec" not in line


def png_that_does_not_decode(path: Path) -> Path:
    """A PNG whose header and chunk checksums are sound but whose pixel data is not zlib data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = (8).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])  # 8x8, 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"not zlib at all") + chunk(b"IEND", b""))
    return path


def test_why_an_image_cannot_be_read_comes_without_nested_parentheses(tmp_path):
    with pytest.raises(SourceError) as refused:
        read_image(png_that_does_not_decode(tmp_path / "bad.png"))
    message = str(refused.value)
    assert message == f"{tmp_path / 'bad.png'}: cannot read this image: the image is corrupt (it cannot be decoded)"
