"""The webhook follows no redirect: a 3xx is undelivered at once, saying to give the final URL, and nothing -- no
body, no credentials -- goes to the host the answer names. A URL whose port is out of range is refused when given."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from maskdet.errors import UserError
from maskdet.monitoring.webhook import WebhookSender, check_url


class Server:
    """A real HTTP server on 127.0.0.1 answering every request with `code` (and a Location when given), recording
    each request's method and Authorization header."""

    def __init__(self, code: int, location: str | None = None):
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append((self.command, self.headers.get("Authorization")))
                self.send_response(code)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = answer  # noqa: N815 (http.server's names)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_undelivered_and_nothing_reaches_the_other_host(code):
    elsewhere = Server(200)
    hook = Server(code, f"http://localhost:{elsewhere.port}/collect")
    statuses: list[str] = []
    try:
        sender = WebhookSender(f"http://hookuser:secret@127.0.0.1:{hook.port}/hook",
                               lambda _r, status: statuses.append(status), backoff_s=0.01)
        sender.submit({"track_id": 1})
        undelivered = sender.close()
    finally:
        hook.close()
        elsewhere.close()
    assert statuses == [f"undelivered: HTTP {code} (redirects are not followed: give the final URL)"]
    assert len(undelivered) == 1 and len(hook.requests) == 1  # asked once: retrying cannot help
    assert elsewhere.requests == []  # no GET without the body, no Authorization forwarded


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/", "http://127.0.0.1:0/hook", "https://host:port/x"])
def test_a_port_out_of_range_is_refused_when_given(url):
    with pytest.raises(UserError, match="--alert-url"):
        check_url(url)
