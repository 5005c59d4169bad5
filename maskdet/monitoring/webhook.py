"""Alerts POSTed to a webhook from a background thread, so a slow or dead server never slows detection.

The queue is bounded (an alert that finds it full is reported undelivered, detection never waits);
each alert is tried ATTEMPTS times with exponential backoff; close() waits at most DRAIN_S for the
rest (and a request already sent then, up to its TIMEOUT_S: a slow server that got it is not told
"undelivered"), then what did not get through is reported undelivered.

A URL with a user and password (https://user:pw@host/hook) sends them as HTTP Basic authentication:
urllib would otherwise take "user:pw@host" for the host name.

Redirects are not followed: urllib would turn the POST into a GET without its body, send the Authorization to
whatever host the answer names, and call that "delivered". A 3xx is undelivered at once (retrying cannot help),
saying to give the final URL.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from maskdet.errors import UserError

ATTEMPTS = 5
BACKOFF_S = 0.5  # then 1, 2, 4 s
TIMEOUT_S = 3.0
DRAIN_S = 5.0
QUEUE_SIZE = 256
_END = object()

Status = Callable[[dict, str], None]


def check_url(url: str) -> str:
    """An http(s) URL with a host and, when it names one, a port in range: refused in one line when given, not at the
    first alert."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--alert-url must be an http:// or https:// URL, not {url!r}")
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number from 0 to 65535)
    except ValueError:
        raise UserError(f"--alert-url {url!r}: the port must be a number from 1 to 65535") from None
    if parts.port == 0:
        raise UserError(f"--alert-url {url!r}: the port must be a number from 1 to 65535")
    return url


class RedirectRefused(Exception):
    """A 3xx answer: the webhook is not where the URL says. Not retried."""

    def __init__(self, code: int):
        super().__init__(f"HTTP {code} (redirects are not followed: give the final URL)")
        self.code = code


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Every 3xx raises RedirectRefused: no second request, to this host or another, with or without credentials."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        fp.close()
        raise RedirectRefused(code)


_OPENER = urllib.request.build_opener(_NoRedirects)


def without_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its user:password@, and the Basic authentication header that carries them instead."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


def post_json(url: str, record: dict, timeout: float) -> None:
    """POST one record; raises on anything but a 2xx answer."""
    body = json.dumps(record).encode("utf-8")
    url, auth = without_credentials(url)
    request = urllib.request.Request(url, body, {"Content-Type": "application/json", "User-Agent": "maskdet", **auth},
                                     method="POST")
    with _OPENER.open(request, timeout=timeout) as response:  # scheme checked: http/https only; no redirect followed
        response.read()


def describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


class WebhookSender:
    """submit(record) never blocks; on_status(record, status) reports 'delivered', 'retrying: ...' or
    'undelivered: ...' (called from the sender thread, and from close())."""

    def __init__(self, url: str, on_status: Status, attempts: int = ATTEMPTS, backoff_s: float = BACKOFF_S,
                 timeout_s: float = TIMEOUT_S, drain_s: float = DRAIN_S, queue_size: int = QUEUE_SIZE):
        self.url = check_url(url)
        self.on_status = on_status
        self.attempts, self.backoff_s, self.timeout_s, self.drain_s = attempts, backoff_s, timeout_s, drain_s
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.lock = threading.Lock()
        self.unfinished: dict[int, dict] = {}  # id(record) -> record submitted, not yet delivered or given up on
        self.undelivered: list[dict] = []
        self.deadline: float | None = None  # set by close(): stop retrying after it
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self.thread.start()

    def submit(self, record: dict) -> None:
        with self.lock:
            self.unfinished[id(record)] = record
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self._settle(record, "undelivered: the webhook queue was full")

    def _settle(self, record: dict, status: str) -> None:
        with self.lock:
            if self.closed or id(record) not in self.unfinished:
                return
            if status == "delivered" or status.startswith("undelivered"):
                del self.unfinished[id(record)]
            if status.startswith("undelivered"):
                self.undelivered.append(record)
            self.on_status(record, status)

    def _give_up(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _run(self) -> None:
        while True:
            record = self.queue.get()
            if record is _END:
                return
            error = "not tried"
            for attempt in range(1, self.attempts + 1):
                if self._give_up():
                    break
                with self.lock:  # the record minus its delivery status, which changes as we go
                    payload = {k: v for k, v in record.items() if k != "delivery"}
                try:
                    post_json(self.url, payload, self.timeout_s)
                except RedirectRefused as exc:
                    self._settle(record, f"undelivered: {exc}")
                    break
                except Exception as exc:  # any other failure is retried; the last one is reported
                    error = describe(exc)
                    self._settle(record, f"retrying: attempt {attempt} failed ({error})")
                    pause = self.backoff_s * 2 ** (attempt - 1)
                    if self.deadline is not None:
                        pause = min(pause, max(0.0, self.deadline - time.monotonic()))
                    if attempt < self.attempts:
                        time.sleep(pause)
                    continue
                self._settle(record, "delivered")
                break
            else:
                self._settle(record, f"undelivered: {self.attempts} attempts failed (last: {error})")
                continue
            if id(record) in self.unfinished:  # gave up at the deadline
                self._settle(record, f"undelivered: not delivered before the end of the run (last: {error})")

    def close(self) -> list[dict]:
        """Wait up to drain_s for the queue (and a request in flight then up to its timeout), then give up on the
        rest (a request still hanging is left to its daemon thread, whose answer no longer counts); returns every
        record that was not delivered."""
        self.deadline = time.monotonic() + self.drain_s
        try:
            self.queue.put(_END, timeout=self.drain_s)
        except queue.Full:
            pass
        # No new attempt after the deadline, but one already sent may still get its answer (a slow server).
        self.thread.join(timeout=max(0.0, self.deadline - time.monotonic()) + self.timeout_s)
        with self.lock:
            left = list(self.unfinished.values())
        for record in left:
            self._settle(record, "undelivered: not delivered before the end of the run")
        with self.lock:
            self.closed = True
            return list(self.undelivered)
