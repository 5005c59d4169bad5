"""The webhook: alerts POSTed as JSON from a background queue with retries and backoff; a server that is
slow, refuses or is down never blocks the caller, and what never got through is reported undelivered."""

from __future__ import annotations

import threading

import pytest

from maskdet.errors import UserError
from maskdet.monitoring.webhook import WebhookSender, check_url


def statuses() -> tuple[dict[int, list[str]], callable]:
    seen: dict[int, list[str]] = {}
    lock = threading.Lock()

    def on_status(record: dict, status: str) -> None:
        with lock:
            seen.setdefault(record["track_id"], []).append(status)

    return seen, on_status


@pytest.mark.parametrize("url", ["ftp://host/x", "file:///etc/passwd", "host:8080/hook", "http://", "javascript:alert(1)"])
def test_only_http_and_https_urls_are_accepted(url):
    with pytest.raises(UserError, match="--alert-url must be an http"):
        check_url(url)
    assert check_url("https://example.org/hook") == "https://example.org/hook"


def test_alerts_arrive_as_the_json_records_submitted(receiver):
    server = receiver()
    seen, on_status = statuses()
    sender = WebhookSender(server.url, on_status)
    records = [{"track_id": i, "verdict": "without_mask", "box": [1.0, 2.0, 3.0, 4.0], "delivery": "queued"} for i in (1, 2)]
    for r in records:
        sender.submit(r)
    assert sender.close() == []
    assert server.received == [{k: v for k, v in r.items() if k != "delivery"} for r in records]
    assert seen == {1: ["delivered"], 2: ["delivered"]}


def test_a_refusing_server_is_retried_with_backoff_until_it_accepts(receiver):
    server = receiver(refuse=2)
    seen, on_status = statuses()
    sender = WebhookSender(server.url, on_status, backoff_s=0.05)
    sender.submit({"track_id": 1})
    assert sender.close() == []
    assert server.attempts == 3 and server.received == [{"track_id": 1}]
    assert seen[1] == ["retrying: attempt 1 failed (HTTP 503)", "retrying: attempt 2 failed (HTTP 503)", "delivered"]


def test_a_server_that_is_down_for_a_while_gets_the_alert_once_it_is_back(receiver, helpers):
    port = helpers.free_port()  # nothing listens there yet: connections are refused
    seen, on_status = statuses()
    retrying = threading.Event()

    def on_status_and_notice(record: dict, status: str) -> None:
        on_status(record, status)
        if status.startswith("retrying"):
            retrying.set()

    sender = WebhookSender(f"http://127.0.0.1:{port}/hook", on_status_and_notice, backoff_s=0.2)
    sender.submit({"track_id": 5})
    assert retrying.wait(10)
    server = receiver(port=port)  # the server comes back
    assert sender.close() == []
    assert server.received == [{"track_id": 5}] and seen[5][0].startswith("retrying: attempt 1 failed")
    assert seen[5][-1] == "delivered"


def test_a_server_that_is_down_leaves_the_alert_undelivered_after_every_attempt(receiver):
    server = receiver()
    server.stop()  # nothing listens on that port any more
    seen, on_status = statuses()
    sender = WebhookSender(server.url, on_status, attempts=3, backoff_s=0.01)
    record = {"track_id": 4}
    sender.submit(record)
    assert sender.close() == [record] and seen[4][-1].startswith("undelivered: 3 attempts failed")
    assert len(seen[4]) == 4  # three failures reported as they happened, then the verdict


def test_a_hanging_server_never_blocks_submit_and_what_is_left_at_close_is_undelivered(receiver):
    server = receiver()
    server.hold = threading.Event()  # every request waits until the test releases it
    seen, on_status = statuses()
    sender = WebhookSender(server.url, on_status, timeout_s=1, drain_s=0.3, queue_size=4)
    for i in range(10):  # the caller (the detection loop) goes on: a full queue drops, never waits
        sender.submit({"track_id": i})
    assert server.waiting.acquire(timeout=10)  # the first request is being held by the server
    full = [i for i, s in seen.items() if s == ["undelivered: the webhook queue was full"]]
    assert len(full) >= 5  # 1 in flight, 4 queued at most: the rest were refused at once
    left = sender.close()  # waits for the hanging request no longer than drain_s and its timeout
    server.hold.set()
    assert sorted(r["track_id"] for r in left) == list(range(10))
    assert [i for i in range(10) if seen[i][-1].startswith("undelivered: not delivered before the end of the run")] == \
        sorted(set(range(10)) - set(full))
    assert server.received == []


def test_a_url_with_a_user_and_password_sends_them_as_basic_auth_to_the_host(receiver):
    """urllib alone takes 'hookuser:s3cret@127.0.0.1' for the host name, and every alert fails."""
    import base64

    server = receiver()
    seen, on_status = statuses()
    sender = WebhookSender(server.url.replace("http://", "http://hookuser:s%40cret@"), on_status)
    sender.submit({"track_id": 1})
    assert sender.close() == [] and seen == {1: ["delivered"]}
    assert server.authorization == ["Basic " + base64.b64encode(b"hookuser:s@cret").decode()]


def test_an_alert_a_slow_server_is_answering_at_the_end_of_the_run_is_delivered_not_given_up(receiver):
    server = receiver()
    server.delay_s = 1.0  # answers after the end of the run's drain time, within the request's timeout
    seen, on_status = statuses()
    sender = WebhookSender(server.url, on_status, timeout_s=5, drain_s=0.2)
    sender.submit({"track_id": 1})
    assert sender.close() == [] and seen == {1: ["delivered"]} and server.received == [{"track_id": 1}]
