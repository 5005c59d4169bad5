"""A WebSocket client on a plain socket for the serving tests, a camera that checks it is let in, and a
client that reads nothing."""

from __future__ import annotations

import json
import socket
import time


class LiveSocket:
    """A WebSocket client on a plain socket (wsproto, what uvicorn serves with), so a test sees exactly
    what the server does: refusals, error messages, closes."""

    def __init__(self, port: int, target: str, headers: list[tuple[str, str]] | None = None):
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import Request

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: list = []
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target=target, extra_headers=headers or [])))
        self.opening = self.next_event()

    @property
    def accepted(self) -> bool:
        from wsproto.events import AcceptConnection

        return isinstance(self.opening, AcceptConnection)

    def next_event(self, within: float | None = None):
        """The server's next event, the pings it sends (every 20 s) answered on the way; TimeoutError if none
        comes `within` seconds (the pings alone would keep a quiet socket waiting for ever)."""
        from wsproto.events import Ping

        deadline = None if within is None else time.monotonic() + within
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no event from the server within {within:g} s")
            while self.pending:
                event = self.pending.pop(0)
                if isinstance(event, Ping):
                    self.sock.sendall(self.ws.send(event.response()))
                    continue
                return event
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.pending.extend(self.ws.events())
            if not data and not self.pending:
                return None

    def send(self, data: bytes | str) -> None:
        from wsproto.events import BytesMessage, TextMessage

        self.sock.sendall(self.ws.send(BytesMessage(data) if isinstance(data, bytes) else TextMessage(data)))

    def receive_json(self) -> dict:
        from wsproto.events import TextMessage

        text = ""
        while True:
            event = self.next_event()
            assert isinstance(event, TextMessage), event
            text += event.data
            if event.message_finished:
                return json.loads(text)

    def close(self) -> None:
        self.sock.close()


def a_camera_is_let_in(port: int, frame: bytes) -> bool:
    """A new camera sends a frame and is answered, not closed (a --max-live slot was free)."""
    from wsproto.events import CloseConnection
    from wsproto.utilities import LocalProtocolError

    live = LiveSocket(port, "/api/live")
    try:
        live.send(frame)
        return not isinstance(live.next_event(), CloseConnection)
    except LocalProtocolError:  # closed (1013, busy) in the same read that accepted it
        return False
    finally:
        live.close()


def send_until_the_server_stops_reading(sock: socket.socket, data: bytes) -> None:
    """Returns once a send has waited half a second: the server reads no more, its answers are not being taken."""
    sock.settimeout(0.5)
    try:
        while True:
            sock.sendall(data)
    except TimeoutError:
        pass
