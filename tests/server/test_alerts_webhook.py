"""The alert webhook posts each new alert group to a real HTTP server started here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from perffarm.server.services.notifiers import EVENT, WebhookSender, verify
from tests.server.conftest import Api
from tests.server.test_alerts import STEP_AT, commit_of, drained, series_runs, upload, values


class Receiver:
    """A tiny HTTP server recording the JSON bodies POSTed to it; fails the first N."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []  # every attempt, failed ones too
        self.attempts = 0
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.raw.append((dict(self.headers.items()), body))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count:
            assert time.monotonic() < deadline, f"{len(self.bodies)} of {count} posts arrived"
            time.sleep(0.02)
        return self.bodies


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    made.thread.start()
    yield made
    made.server.shutdown()
    made.server.server_close()


def test_a_new_alert_group_is_posted_once(api: Api, receiver: Receiver) -> None:
    answer = api.client.put(
        "/api/v1/alert-settings", json={"alert_webhook_url": receiver.url}, headers=api.admin
    )
    assert answer.status_code == 200 and answer.json()["webhook_url"] == receiver.url
    auth = api.register()
    upload(api, series_runs(values(), benchmarks=("read", "write")), auth)
    drained(api)
    (body,) = receiver.wait_for(1)
    assert body["event"] == EVENT
    group = body["group"]
    assert (group["commit_before"], group["commit_after"]) == (
        commit_of(STEP_AT - 1),
        commit_of(STEP_AT),
    )
    # Both benchmarks were analysed in the same round, so the one post carries both alerts.
    assert sorted(a["benchmark"] for a in group["alerts"]) == ["read", "write"]
    assert "2 regression(s)" in body["summary"]
    # Later points of the same level make no new group and no new post.
    upload(api, series_runs(values(n=90)[75:], first=75, benchmarks=("read", "write")), auth)
    drained(api)
    # Detection queued any post before it went idle, and the one sender thread delivers in
    # order: once a marker queued now arrives, a post for those points would be in first.
    marker = {**group, "id": -1}
    api.client.app.state.detection.webhooks["webhook"].notify([marker])
    first, second = receiver.wait_for(2)
    assert first is body and second["group"]["id"] == -1


def test_an_unreachable_webhook_is_logged_and_detection_goes_on(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api.client.put(
        "/api/v1/alert-settings",
        json={"alert_webhook_url": "http://127.0.0.1:9/nobody"},
        headers=api.admin,
    )
    api.client.app.state.detection.webhooks["webhook"].first_delay = 0.01
    auth = api.register()
    upload(api, series_runs(values()), auth)
    status = drained(api)
    assert status["errors"] == 0
    assert len(api.get("/alerts").json()["items"]) == 1
    sender = api.client.app.state.detection.webhooks
    deadline = time.monotonic() + 20
    while sender.failed == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert sender.sent == 0


def test_a_failing_receiver_gets_the_post_on_a_retry_signed_with_one_delivery_id() -> None:
    receiver = Receiver(fail_first=2)
    receiver.thread.start()
    try:
        sender = WebhookSender(lambda: receiver.url, secret="s3cret", first_delay=0.01)
        sender.start()
        group = {
            "id": 1,
            "project": "demo",
            "branch": "main",
            "commit_before": "a" * 40,
            "commit_after": "b" * 40,
            "alerts": [{"magnitude": 0.1, "benchmark": "bench", "metric": "latency"}],
            "regressions": 1,
            "improvements": 0,
        }
        sender.enqueue_groups([group])
        (body,) = receiver.wait_for(1)
        sender.stop()
        assert receiver.attempts == 3
        assert body["group"]["id"] == 1
        assert "+10.0% in bench latency" in body["summary"]
        assert (sender.sent, sender.failed) == (1, 0)
        deliveries = {headers["X-Perffarm-Delivery"] for headers, _ in receiver.raw}
        assert len(receiver.raw) == 3 and len(deliveries) == 1
        headers, raw = receiver.raw[-1]
        assert verify("s3cret", headers, raw)
        assert not verify("other secret", headers, raw)
        assert not verify("s3cret", headers, raw.replace(b"demo", b"omed"))
        stale = {
            **headers,
            "X-Perffarm-Timestamp": str(int(headers["X-Perffarm-Timestamp"]) - 3600),
        }
        assert not verify("s3cret", stale, raw)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_without_a_secret_posts_carry_no_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFFARM_ALERT_WEBHOOK_SECRET", raising=False)
    receiver = Receiver()
    receiver.thread.start()
    try:
        sender = WebhookSender(lambda: receiver.url, first_delay=0.01)
        sender.start()
        sender.enqueue_groups(
            [{"id": 2, "project": "p", "branch": None, "commit_before": None,
              "commit_after": None, "alerts": [], "regressions": 0, "improvements": 1}]
        )  # fmt: skip
        receiver.wait_for(1)
        sender.stop()
        ((headers, _),) = receiver.raw
        assert "X-Perffarm-Signature" not in headers
        assert headers["X-Perffarm-Event"] == EVENT
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
