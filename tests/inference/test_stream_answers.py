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

from maskdet.inference.sources import (
    REACH_PROBE_S,
    LatestFrameReader,
    SourceError,
    SourceSpec,
    _host_and_port,
    _probe_target,
    tcp_reach,
)

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


def test_a_server_that_answers_and_then_sends_nothing_is_said_to_have_taken_the_connection(raw_server):
    server = raw_server(lambda connection, _stop: connection.sendall(HEADERS))
    assert open_error(server.url) == (f"cannot open stream {server.url}: no video came within 2 s (--stream-timeout): "
                                      "the server took the connection but sent nothing that can be decoded. Check the "
                                      "URL's path and that the camera is streaming")


@pytest.fixture
def unanswering_address() -> Iterator[tuple[str, int]]:
    """127.0.0.1 and a port where no TCP handshake is answered, as at a camera that is off or behind a firewall: a
    listener whose one-place queue is full (Linux drops the SYNs that come then)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    address = listener.getsockname()
    filler = socket.create_connection(address, timeout=5)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        try:
            probe.connect(address)
        except TimeoutError:  # the queue is full: what the test stands on
            yield address
        else:
            pytest.skip("this system answers a handshake past a full listen queue (Linux drops it)")
    finally:
        for sock in (probe, filler, listener):
            sock.close()


def test_an_address_where_nothing_answers_is_told_apart_from_a_server_that_sent_nothing(unanswering_address):
    host, port = unanswering_address
    url = f"rtsp://{host}:{port}/stream1"
    started = time.monotonic()
    assert open_error(url) == (f"cannot open stream {url}: no video came within 2 s (--stream-timeout): nothing "
                               f"answered at {host}:{port} within 3 s. Check the address, and that the camera is on "
                               "and reachable from here")
    assert time.monotonic() - started < 2 + REACH_PROBE_S + 2


@pytest.mark.parametrize(("url", "target"), [("rtsp://cam.local/live", ("cam.local", 554)),
                                             ("rtsps://cam.local/live", ("cam.local", 322)),
                                             ("http://10.0.0.9:8080/v.ts", ("10.0.0.9", 8080)),
                                             ("https://[::1]/live", ("::1", 443)), ("rtmp://host/app", ("host", 1935)),
                                             ("udp://239.0.0.1:1234", None), ("srt://host:9000", None),
                                             ("tcp://host/", None), ("rtsp://host:99999/", None),
                                             ("rtsp://host:0/", None)])
def test_the_connection_that_tells_why_goes_to_the_urls_host_and_port_or_the_schemes_own(url, target):
    """UDP-based schemes (udp, srt) have no connection to try; tcp:// has no port of its own."""
    assert _probe_target(url) == target


def test_a_closed_port_is_refused_and_an_open_one_connected():
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # held, never listening: its port is closed and no other test can take it
        assert tcp_reach(f"rtsp://127.0.0.1:{listener.getsockname()[1]}/", 2) == "connected"
        assert tcp_reach(f"rtsp://127.0.0.1:{bound.getsockname()[1]}/", 2) == "refused"


def test_a_url_fetched_through_a_proxy_is_not_probed_directly(monkeypatch):
    """FFmpeg's http goes through http_proxy: a server reachable only that way must not be said to be unreachable."""
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "cam.local")
    assert _probe_target("http://10.0.0.9:8080/v.ts") is None
    assert _probe_target("http://cam.local:8080/v.ts") == ("cam.local", 8080)  # no_proxy: FFmpeg goes straight there
    assert _probe_target("rtsp://10.0.0.9/live") == ("10.0.0.9", 554)  # RTSP never goes through it


def test_an_ipv6_address_is_named_in_brackets_as_a_url_writes_it():
    assert (_host_and_port("::1", 554), _host_and_port("cam.local", 554)) == ("[::1]:554", "cam.local:554")


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


def test_a_wait_given_up_just_as_a_probe_answered_gives_up_cleanly(monkeypatch):
    """The probe's answer is a word, not a capture to release: given up between the answer and its signal, the wait
    still ends as given up (told in the generic words), never with an AttributeError."""
    import maskdet.inference.sources as sources

    class SlowToSignal(threading.Event):
        def set(self) -> None:
            time.sleep(0.5)  # the answer is in, its signal late: the wait's deadline passes in between
            super().set()

    monkeypatch.setattr(sources.threading, "Event", SlowToSignal)
    with pytest.raises(sources._GaveUp):
        sources._on_a_thread(lambda: "connected", "reach-probe", 0.1)
