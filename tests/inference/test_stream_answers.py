"""A stream that does not open says what happened, as far as FFmpeg tells: a server that answered with
something that is not video is not told to check that it is up, and the --stream-timeout it is given up
after is the one it names (the opening used to take twice as long: FFmpeg's probe got the timeout again)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from maskdet.inference.sources import LatestFrameReader, SourceError, SourceSpec

HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n\r\n"


class RawHttpServer:
    """One HTTP answer on 127.0.0.1, written by hand: `answer(connection, stop)` sends what it sends; the
    connection is then held open until the test ends. `accepted`: when the client connected."""

    def __init__(self, answer: Callable[[socket.socket, threading.Event], None]):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/live"
        self.answer = answer
        self.stop = threading.Event()
        self.accepted: float | None = None
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:  # closed at teardown
            return
        self.accepted = time.monotonic()
        self.connections.append(connection)
        connection.recv(65536)  # the request
        try:
            self.answer(connection, self.stop)
        except OSError:  # the client gave up and closed it
            pass

    def close(self) -> None:
        self.stop.set()
        for sock in (self.listener, *self.connections):
            sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawHttpServer]]:
    servers: list[RawHttpServer] = []

    def start(answer: Callable[[socket.socket, threading.Event], None]) -> RawHttpServer:
        servers.append(RawHttpServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def open_error(url: str, stream_timeout: float = 2) -> str:
    with pytest.raises(SourceError) as error:
        LatestFrameReader(SourceSpec("stream", url), lambda _line: None, stream_timeout).open()
    return str(error.value)


def random_bytes(connection: socket.socket, stop: threading.Event) -> None:
    connection.sendall(HEADERS)
    while not stop.is_set():
        connection.sendall(os.urandom(1 << 16))


def test_a_server_that_answers_with_bytes_that_are_not_video_is_said_to_have_answered(raw_server):
    server = raw_server(random_bytes)
    message = open_error(server.url)
    assert message == f"cannot open stream {server.url}: the server answered, but what it sent is not a video that " \
                      "can be decoded"


def test_a_server_that_answers_and_then_sends_nothing_is_not_said_to_have_not_answered(raw_server):
    server = raw_server(lambda connection, _stop: connection.sendall(HEADERS))
    message = open_error(server.url)
    assert message.startswith(f"cannot open stream {server.url}: no video came within 2 s (--stream-timeout)")
    assert "answered but sent nothing that can be decoded" in message
    assert "server is up and reachable" not in message


def test_a_server_that_answers_404_is_said_to_have_answered_404(raw_server):
    server = raw_server(lambda connection, _stop: connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    assert open_error(server.url) == f"cannot open stream {server.url}: the server answered 404 Not Found: check the URL"


def trickle_of_mpegts_garbage(connection: socket.socket, stop: threading.Event) -> None:
    """MPEG-TS packets (sync byte, a PID) whose payloads are random: a container FFmpeg recognises, with no
    program in it, sent slowly enough that FFmpeg's probe never reaches its byte limit."""
    connection.sendall(HEADERS)
    counter = 0
    while not stop.wait(0.005):
        connection.sendall(bytes([0x47, 0x01, 0x00, 0x10 | counter % 16]) + os.urandom(184))
        counter += 1


def test_a_stream_that_never_decodes_is_given_up_at_the_stream_timeout_it_names(raw_server):
    server = raw_server(trickle_of_mpegts_garbage)
    message = open_error(server.url, stream_timeout=2)
    took = time.monotonic() - server.accepted
    assert "no video came within 2 s (--stream-timeout)" in message, message
    assert took < 3.0, f"given up {took:.1f} s after the server answered, not at the 2 s it says"
