"""The deadlines of maskdet/serving/connection.py, over real TCP to a real serve.py: a client that does not send a
request's headers in time gets 408 and is closed; clients that do are not touched, on any request of a kept-alive
connection, and neither is the live camera's WebSocket once open. A client that takes nothing of what it is sent
is dropped after --send-timeout, its connection (a file descriptor of the server's) given back; a slow reader is not."""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time

import cv2
import pytest
from live_socket import LiveSocket, send_until_the_server_stops_reading

DEADLINE_S = 1.0  # for the clients that miss it
IN_TIME_DEADLINE_S = 3.0  # for the clients that must beat it: room for a loaded machine between connect and send
WAIT_S = 30.0  # the longest a test waits for the server's answer; it comes after DEADLINE_S


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server wrote before it closed (a byte of ours that crossed its close makes a reset)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def answered(sock: socket.socket) -> bool:
    """The server has written something (or closed), without waiting."""
    return bool(select.select([sock], [], [], 0)[0])


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and Content-Length body) from a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_connection_that_sends_nothing_gets_408_and_is_closed_after_the_deadline(start_server):
    server = start_server("--header-timeout", DEADLINE_S)
    with connect(server) as sock:
        opened = time.monotonic()
        answer = read_until_closed(sock)
        waited = time.monotonic() - opened
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert DEADLINE_S * 0.9 <= waited < WAIT_S


def test_the_408_for_late_headers_is_json_naming_the_deadline_like_every_other_error(start_server):
    server = start_server("--header-timeout", DEADLINE_S)
    with connect(server) as sock:
        answer = read_until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"content-type: application/json" in head.lower(), answer
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    assert len(body) == length, answer
    message = json.loads(body)["error"]
    assert "request headers took too long" in message and f"{DEADLINE_S:g} s" in message and "--header-timeout" in message


def test_headers_that_trickle_in_a_byte_at_a_time_are_cut_off_not_waited_for(start_server):
    """A byte every 0.1 s keeps any idle timer from firing (the slowloris attack); the deadline counts from the
    connection, so it is closed before the 200 bytes of headers are half sent."""
    server = start_server("--header-timeout", DEADLINE_S)
    request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 150 + b"\r\n\r\n"
    sent = 0
    with connect(server) as sock:
        try:
            for byte in request:
                if answered(sock):
                    break
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.1)  # the trickle itself, not a wait for readiness
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert sent < len(request) // 2, sent


def test_requests_that_arrive_in_time_are_answered_each_one_on_a_kept_alive_connection(start_server):
    """The deadline is armed again after each response: three requests on one connection, each answered."""
    server = start_server("--header-timeout", IN_TIME_DEADLINE_S)
    with connect(server) as sock:
        for _ in range(3):
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHo")  # then a fourth that stalls: the deadline holds for it too
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_an_open_live_socket_outlives_the_deadline_and_still_detects(start_server, photo):
    server = start_server("--header-timeout", IN_TIME_DEADLINE_S)
    live = LiveSocket(server.port, "/api/live")
    assert live.accepted
    time.sleep(IN_TIME_DEADLINE_S * 1.5)  # what is tested: the socket stays open past the deadline
    live.send(cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes())
    assert live.receive_json()["counts"] == {"with_mask": 1, "without_mask": 1}
    live.close()


SEND_TIMEOUT_S = 3.0
needs_tcp_info = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                    reason="--send-timeout reads the client's progress from Linux's TCP_INFO")


def open_files(server) -> int:
    return len(os.listdir(f"/proc/{server.process.proc.pid}/fd"))


def deaf_socket(server) -> socket.socket:
    """A client with a small receive window that will read nothing: the server's sends stall sooner."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(WAIT_S)
    sock.connect(("127.0.0.1", server.port))
    return sock


@needs_tcp_info
def test_a_client_that_takes_none_of_its_responses_is_dropped_after_the_send_timeout(start_server, serve_kit):
    """Downloads asked for and never read: without the timeout, the connection is held for ever, closed or not."""
    server = start_server("--send-timeout", SEND_TIMEOUT_S)
    before = open_files(server)
    with deaf_socket(server) as sock:
        send_until_the_server_stops_reading(sock, b"GET /static/app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 50)
        assert open_files(server) > before
        serve_kit.wait_for(lambda: open_files(server) <= before, 30, message="the deaf client's connection to be dropped")
    with connect(server) as sock:  # and the server goes on
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")


@needs_tcp_info
def test_a_live_camera_that_reads_none_of_its_answers_is_dropped_after_the_send_timeout(start_server, serve_kit):
    """--live-timeout gives up its --max-live place; the send timeout gives back its connection."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, Request

    server = start_server("--send-timeout", SEND_TIMEOUT_S, "--live-timeout", 1)
    before = open_files(server)
    ws = WSConnection(ConnectionType.CLIENT)
    with deaf_socket(server) as sock:
        sock.sendall(ws.send(Request(host="127.0.0.1", target="/api/live")))
        ws.receive_data(sock.recv(65536))
        assert isinstance(next(ws.events()), AcceptConnection)
        send_until_the_server_stops_reading(sock, ws.send(BytesMessage(b"x")) * 1024)  # each answered: not an image
        assert open_files(server) > before
        serve_kit.wait_for(lambda: open_files(server) <= before, 30, message="the deaf camera's connection to be dropped")


@needs_tcp_info
def test_a_slow_reader_is_not_dropped_however_long_it_takes(start_server, serve_kit):
    """The timeout is on taking nothing, not on the whole download: 1 KB every 0.25 s gets all of it."""
    server = start_server("--send-timeout", SEND_TIMEOUT_S)
    expected = (serve_kit.root / "maskdet" / "serving" / "static" / "app.js").stat().st_size
    with deaf_socket(server) as sock:
        sock.settimeout(WAIT_S)
        sock.sendall(b"GET /static/app.js HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        started, received = time.monotonic(), b""
        while chunk := sock.recv(1024):
            received += chunk
            time.sleep(0.25)  # the slow reader itself, not a wait for readiness
        took = time.monotonic() - started
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and len(body) == expected, (head, len(body), expected)
    assert took > SEND_TIMEOUT_S * 1.5, took  # it did take longer than the timeout


@needs_tcp_info
def test_the_watchdog_keeps_a_reader_that_pauses_and_aborts_one_that_stops():
    """SendWatchdog on its own, on a real socket pair whose server side has small kernel buffers, so that bytes wait
    in asyncio's buffer (through serve.py the kernel soaks up megabytes first): a reader that takes 16 KB every
    0.05 s is kept through three timeouts; once it stops, it is aborted within a timeout and a check or two."""
    import asyncio

    from maskdet.serving.connection import SendWatchdog

    timeout_s = 0.5

    async def scenario() -> tuple[bool, float]:
        lost = asyncio.get_running_loop().create_future()

        class Sender(asyncio.Protocol):
            def connection_made(self, transport):
                transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                self.watchdog = SendWatchdog(transport, timeout_s, asyncio.get_running_loop())
                transport.write(bytes(4 << 20))  # far more than the reader will take

            def connection_lost(self, exc):
                self.watchdog.stop()
                lost.set_result(time.monotonic())

        loop = asyncio.get_running_loop()
        server = await loop.create_server(Sender, "127.0.0.1", 0)
        with socket.socket() as client:  # a fixed 64 KB window: the 4 MB cannot all sit in the reader's kernel
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            client.setblocking(False)
            await loop.sock_connect(client, server.sockets[0].getsockname())
            started = time.monotonic()
            while time.monotonic() - started < 3 * timeout_s:  # the slow reader
                assert await loop.sock_recv(client, 16384)
                await asyncio.sleep(0.05)
            kept = not lost.done()
            stopped = time.monotonic()  # then it takes nothing more
            aborted_after = await asyncio.wait_for(lost, 10) - stopped
        server.close()
        return kept, aborted_after

    kept, aborted_after = asyncio.run(scenario())
    assert kept
    assert aborted_after <= timeout_s * (1 + 2 / SendWatchdog.CHECKS_PER_TIMEOUT) + 0.5, aborted_after
