"""Two deadlines uvicorn does not have: on a request's headers, and on a client taking what it is sent.

Uvicorn waits for a request's headers as long as the client likes: a connection that sends nothing, or a header
byte every few seconds ("slowloris"), is held open forever, and enough of them exhaust the server's file
descriptors. nginx closes such a connection after `client_header_timeout`; this does the same inside uvicorn, for
every request on a connection (the first, and each one after on a kept-alive connection). Bodies have their own
rate limit (`app.BodyLimit`); a WebSocket, once upgraded, is the live camera's (`--live-timeout`, in the app).

The other way round, a client that takes nothing of what it is sent (a response, a download, the live camera's
answers) stalls the server's writes once the socket's buffers are full, and uvicorn then holds the connection for
ever, even after it has given up on it: closing waits for the unsent bytes. `SendWatchdog` aborts a connection
whose client has acknowledged nothing new for `--send-timeout` while bytes wait to be sent, as nginx's
`send_timeout` does; a slow reader makes progress and is kept. Progress is read from the kernel (TCP_INFO's
bytes acknowledged), so Linux only. The kernel's own TCP_USER_TIMEOUT was measured and not used: it also drops
slow readers whose window keeps closing (a 64 KB buffer read at 40 KB/s, dropped after the timeout).
The server always speaks HTTP through h11 this way (uvicorn's choice too unless httptools is installed).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

from uvicorn.protocols.http.h11_impl import H11Protocol

from maskdet.settings import ServeSettings


def timeout_response(header_timeout_s: float) -> bytes:
    """The 408 a client gets when its request's headers are late: JSON {"error": ...}, as every error of the API."""
    body = json.dumps({"error": f"request headers took too long: not all in within {header_timeout_s:g} s of connecting "
                                "or of the response before (--header-timeout)"}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))


TCP_INFO_BYTES_ACKED = slice(120, 128)  # struct tcp_info's tcpi_bytes_acked (Linux 4.1 on), native byte order


def bytes_acknowledged(sock) -> int | None:
    """What the client has acknowledged receiving on this socket so far; None where the kernel does not say."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except (AttributeError, OSError):
        return None
    return int.from_bytes(info[TCP_INFO_BYTES_ACKED], sys.byteorder) if len(info) >= TCP_INFO_BYTES_ACKED.stop else None


def kernel_reports_progress() -> bool:
    with socket.socket() as probe:
        return bytes_acknowledged(probe) is not None


SEND_TIMEOUT_SUPPORTED = kernel_reports_progress()


class SendWatchdog:
    """Aborts a connection when bytes wait to be sent on it and the client acknowledges nothing new for `seconds`.
    Polled a few times a timeout by one timer per connection; it outlives an upgrade to a WebSocket (same
    transport) and stops once the connection is closed with nothing left to send."""

    CHECKS_PER_TIMEOUT = 4

    def __init__(self, transport: asyncio.Transport, seconds: float, loop: asyncio.AbstractEventLoop):
        self.transport, self.seconds, self.loop = transport, seconds, loop
        self.sock = transport.get_extra_info("socket")
        self.acked = bytes_acknowledged(self.sock) if self.sock is not None else None
        self.stalled_since: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        if self.acked is not None:
            self.timer = loop.call_later(seconds / self.CHECKS_PER_TIMEOUT, self.check)

    def check(self) -> None:
        self.timer = None
        if self.transport.get_write_buffer_size() == 0:
            if self.transport.is_closing():
                return  # closed, or closing with nothing left to send: the kernel finishes on its own
            self.stalled_since = None
        else:
            acked = bytes_acknowledged(self.sock)
            now = self.loop.time()
            if acked is None or acked != self.acked or self.stalled_since is None:
                self.acked, self.stalled_since = acked, now  # progress (or the first sign of a stall)
            elif now - self.stalled_since >= self.seconds:
                self.transport.abort()  # the unsent bytes go, and with them the connection
                return
        self.timer = self.loop.call_later(self.seconds / self.CHECKS_PER_TIMEOUT, self.check)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class DeadlineProtocol(H11Protocol):
    """Uvicorn's h11 protocol, with the connection closed (408) when a request's headers are not all in within
    `header_timeout_s` of the connection opening, or of the response before on the same connection; and aborted
    when the client takes nothing sent to it for `send_timeout_s` (SendWatchdog)."""

    header_timeout_s: float = ServeSettings.header_timeout_s
    send_timeout_s: float = ServeSettings.send_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._watchdog = SendWatchdog(transport, self.send_timeout_s, self.loop)
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        self._cancel_deadline()
        self._awaited_after = self.cycle  # a new cycle object means the next request's headers are in
        self._deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.write(timeout_response(self.header_timeout_s))
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self._deadline is not None and self.cycle is not self._awaited_after:
            self._cancel_deadline()

    def handle_websocket_upgrade(self, event) -> None:
        self._cancel_deadline()  # the WebSocket protocol owns the connection from here on
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may already have started a pipelined request
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:  # not called after an upgrade: the WebSocket's then
        self._cancel_deadline()
        self._watchdog.stop()
        super().connection_lost(exc)


def deadline_protocol(header_timeout_s: float, send_timeout_s: float) -> type[DeadlineProtocol]:
    """The protocol class for `uvicorn.Config(http=...)`, with these deadlines."""
    return type("DeadlineProtocol", (DeadlineProtocol,), {"header_timeout_s": header_timeout_s,
                                                          "send_timeout_s": send_timeout_s})
