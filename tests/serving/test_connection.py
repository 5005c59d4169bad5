"""The header deadline (maskdet/serving/connection.py), over real TCP to a real serve.py: a client that does not
send a request's headers in time gets 408 and is closed; clients that do are not touched, on any request of a
kept-alive connection, and neither is the live camera's WebSocket once open."""

from __future__ import annotations

import select
import socket
import time

import cv2
from live_socket import LiveSocket

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
    assert answer.startswith(b"HTTP/1.1 408 ") and answer.endswith(b"request headers took too long\n"), answer
    assert DEADLINE_S * 0.9 <= waited < WAIT_S


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

