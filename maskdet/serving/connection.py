"""A deadline on a request's headers, which uvicorn does not have.

Uvicorn waits for a request's headers as long as the client likes: a connection that sends nothing, or a header
byte every few seconds ("slowloris"), is held open forever, and enough of them exhaust the server's file
descriptors. nginx closes such a connection after `client_header_timeout`; this does the same inside uvicorn, for
every request on a connection (the first, and each one after on a kept-alive connection). Bodies have their own
rate limit (`app.BodyLimit`); a WebSocket, once upgraded, is the live camera's and has no deadline here.
The server always speaks HTTP through h11 this way (uvicorn's choice too unless httptools is installed).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

from maskdet.settings import ServeSettings

TIMEOUT_MESSAGE = b"request headers took too long\n"
TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(TIMEOUT_MESSAGE), TIMEOUT_MESSAGE))


class HeaderDeadlineProtocol(H11Protocol):
    """Uvicorn's h11 protocol, with the connection closed (408) when a request's headers are not all in within
    `header_timeout_s` of the connection opening, or of the response before on the same connection."""

    header_timeout_s: float = ServeSettings.header_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
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
            self.transport.write(TIMEOUT_RESPONSE)
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

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)


def header_deadline_protocol(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for `uvicorn.Config(http=...)`, with this deadline."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": seconds})
