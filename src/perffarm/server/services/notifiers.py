"""The alert webhook: one JSON POST per new alert group, off every request path.

Deliveries go through a queue drained by one daemon thread, with a few retries and
exponential backoff; a receiver that is down or answers an error is logged and given up
on. A webhook is a notification, never a reason for the detection worker to stop.

With a secret (``PERFFARM_ALERT_WEBHOOK_SECRET``; environment only, so it is never readable
through the settings API), each post is signed: ``X-Perffarm-Signature: sha256=<hex>`` is the
HMAC-SHA256 of ``"<X-Perffarm-Timestamp>." + body``, so a receiver can check both who sent it
and that it is not an old post replayed. ``X-Perffarm-Delivery`` stays the same across the
retries of one post, so a receiver can drop a duplicate.

The webhook is the built-in plug-in of the ``perffarm.notifiers`` group (``Notifier`` below
is the contract, declared in ``perffarm.plugins``): ``Notifiers`` loads every installed
notifier through the registry, this one included, and tells each about every new group.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from perffarm import __version__, plugins

log = logging.getLogger("perffarm.server.services.notifiers")

EVENT = "perffarm.alert_group.created"
ENV_SECRET = "PERFFARM_ALERT_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Perffarm-Signature"
TIMESTAMP_HEADER = "X-Perffarm-Timestamp"
RETRIES = 4
FIRST_DELAY = 0.5
TIMEOUT = 10.0


def payload(group: dict[str, Any], base_url: str | None = None) -> dict[str, Any]:
    """What the receiver gets: the event name, a one-line summary, and the whole group."""
    alerts = group["alerts"]
    worst = max(alerts, key=lambda a: abs(a["magnitude"]), default=None)
    commits = f"{(group['commit_before'] or '?')[:12]}..{(group['commit_after'] or '?')[:12]}"
    summary = (
        f"{group['project']} {group['branch'] or ''} {commits}: "
        f"{group['regressions']} regression(s), {group['improvements']} improvement(s)"
    )
    if worst is not None:
        summary += f"; largest {worst['magnitude']:+.1%} in {worst['benchmark']} {worst['metric']}"
    body: dict[str, Any] = {"event": EVENT, "summary": summary, "group": group}
    if base_url:
        body["url"] = f"{base_url.rstrip('/')}/api/v1/alert-groups/{group['id']}"
    return body


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Perffarm-Signature`` value of a post; receivers compare it in constant time."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, headers: Any, body: bytes, *, max_age: float = 300.0) -> bool:
    """A receiver's check of a post: right signature, and signed less than ``max_age`` ago."""
    timestamp = headers.get(TIMESTAMP_HEADER) or ""
    given = headers.get(SIGNATURE_HEADER) or ""
    try:
        fresh = abs(time.time() - int(timestamp)) <= max_age
    except ValueError:
        return False
    return fresh and hmac.compare_digest(given, signature(secret, timestamp, body))


@dataclass(frozen=True)
class NotifierContext:
    """What the server tells a notifier when it makes it."""

    webhook_url: Callable[[], str | None]
    """The alert settings' webhook URL, read when called (an admin may change it any time)."""


class Notifier(Protocol):
    """The contract of the ``perffarm.notifiers`` group (declared in ``perffarm.plugins``).

    ``Notifier(context)`` is made once when the server starts; every installed notifier is
    used. ``notify(groups)`` is called from change-point detection with the new alert groups
    (plain JSON dicts, the ``/api/v1/alert-groups`` items): it must only queue them, never
    block or raise. ``start()`` and ``stop(timeout)`` run with the server's lifespan, so
    deliveries happen on the notifier's own thread or task. A notifier reads its own
    settings (its receiver's URL, a token) from the environment.
    """

    def __init__(self, context: NotifierContext, /) -> None: ...

    def notify(self, groups: list[dict[str, Any]]) -> None: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...


class WebhookSender:
    """Posts payloads to the URL ``url_of()`` gives at sending time (None: webhooks off)."""

    def __init__(
        self,
        url_of: Callable[[], str | None],
        *,
        secret: str | None = None,
        retries: int = RETRIES,
        first_delay: float = FIRST_DELAY,
    ) -> None:
        self.url_of = url_of
        self.secret = secret if secret is not None else os.environ.get(ENV_SECRET) or None
        self.retries = retries
        self.first_delay = first_delay
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    def notify(self, groups: list[dict[str, Any]]) -> None:
        for group in groups:
            self._queue.put(payload(group))

    enqueue_groups = notify

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="perffarm-webhooks", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        with httpx.Client(
            timeout=TIMEOUT, headers={"User-Agent": f"perffarm/{__version__}"}
        ) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                try:
                    url = self.url_of()
                except Exception:
                    log.exception("cannot read the alert webhook URL")
                    url = None
                if url:
                    self._deliver(client, url, item)

    def _deliver(self, client: httpx.Client, url: str, body: dict[str, Any]) -> None:
        content = json.dumps(body, separators=(",", ":")).encode()
        delivery = str(uuid.uuid4())
        delay = self.first_delay
        for attempt in range(1, self.retries + 1):
            headers = {
                "Content-Type": "application/json",
                "X-Perffarm-Event": body.get("event", EVENT),
                "X-Perffarm-Delivery": delivery,
            }
            if self.secret:
                timestamp = str(int(time.time()))
                headers[TIMESTAMP_HEADER] = timestamp
                headers[SIGNATURE_HEADER] = signature(self.secret, timestamp, content)
            try:
                answer = client.post(url, content=content, headers=headers)
                if answer.status_code < 400:
                    self.sent += 1
                    return
                reason = f"HTTP {answer.status_code}"
                if 400 <= answer.status_code < 500 and answer.status_code not in (408, 429):
                    attempt = self.retries  # the receiver refuses this body: retrying won't help
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if attempt >= self.retries:
                self.failed += 1
                log.warning("alert webhook %s failed after %d attempt(s): %s", url, attempt, reason)
                return
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


class WebhookNotifier(WebhookSender):
    """The ``webhook`` notifier: one signed POST per new group to the settings' URL."""

    def __init__(self, context: NotifierContext, /) -> None:
        super().__init__(context.webhook_url)


class Notifiers:
    """Every installed notifier (``perffarm.notifiers``), told about each new alert group.

    A notifier that cannot be loaded or made is logged, one line, and left out: a
    notification is never a reason for the server not to start or detection to stop.
    """

    def __init__(self, webhook_url: Callable[[], str | None]) -> None:
        context = NotifierContext(webhook_url=webhook_url)
        self.members: dict[str, Notifier] = {}
        for name in plugins.names(plugins.NOTIFIERS):
            try:
                self.members[name] = plugins.load(plugins.NOTIFIERS, name)(context)
            except plugins.PluginError as exc:
                log.error("%s; alerts are not sent through it", exc)
            except Exception as exc:
                where = plugins.where(plugins.NOTIFIERS, name)
                log.error("%s could not be made: %s", where, plugins.describe(exc))

    def __getitem__(self, name: str) -> Notifier:
        return self.members[name]

    @property
    def sent(self) -> int:
        """Deliveries made, over the notifiers that count them."""
        return sum(getattr(member, "sent", 0) for member in self.members.values())

    @property
    def failed(self) -> int:
        """Deliveries given up, over the notifiers that count them."""
        return sum(getattr(member, "failed", 0) for member in self.members.values())

    def notify(self, groups: list[dict[str, Any]]) -> None:
        for name, member in self.members.items():
            try:
                member.notify(groups)
            except Exception:
                log.exception("notifier %r failed to take %d alert group(s)", name, len(groups))

    enqueue_groups = notify

    def start(self) -> None:
        for name, member in self.members.items():
            try:
                member.start()
            except Exception:
                log.exception("notifier %r failed to start", name)

    def stop(self, timeout: float = 5.0) -> None:
        for name, member in self.members.items():
            try:
                member.stop(timeout)
            except Exception:
                log.exception("notifier %r failed to stop", name)
