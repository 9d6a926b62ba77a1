"""``PUT /test/{id}/peer/{peerId}/metrics`` straight from the ASGI server, ahead of the
framework: the original harness's clients send one datapoint per request, thousands a
second."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from perffarm.server.http.loadtests_compat import CORS, TOKEN_HEADER, put_metrics_body
from perffarm.server.services.loadtests import LoadTests

log = logging.getLogger("perffarm.loadtests")

_METRICS_PATH = re.compile(r"^/test/([^/]+)/peer/([^/]+)/metrics$")
_FAST_HEADERS = [
    (b"content-type", b"application/json"),
    *((k.lower().encode(), v.encode()) for k, v in CORS.items()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class FastMetricsPut:
    """``PUT /test/{id}/peer/{peerId}/metrics`` straight from the ASGI server.

    The original harness's clients send one datapoint per request, thousands a second;
    through the framework (its telemetry and error layers, routing among a hundred routes,
    dependencies, middleware that resolves credentials in a thread) a request cost three
    times its own work. Only requests that the middleware would have passed unchanged are
    answered here: no ``Authorization`` or cookie (so nothing to resolve), a
    ``Content-Length`` within the server's limit and no ``Content-Encoding``, a farm that is
    not private, and the compatible routes open or the load-test token given. Everything
    else takes the ordinary way, to the same handler (``put_metrics_body``), so both answer
    alike; a database that is down is a 503 on both.
    """

    _SKIP = frozenset((b"authorization", b"cookie", b"content-encoding", b"transfer-encoding"))
    _TOKEN = TOKEN_HEADER.lower().encode()

    def __init__(self, app: Any, *, server: FastAPI, max_body: int, private: bool) -> None:
        self.app = app
        self.server = server
        self.max_body = max_body
        self.private = private

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "PUT"
            or self.private
            or not scope["path"].endswith("/metrics")
        ):
            await self.app(scope, receive, send)
            return
        match = _METRICS_PATH.match(scope["path"])
        length = token = None
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name in self._SKIP:
                match = None
            elif name == self._TOKEN:
                token = value.decode("latin-1")
        store: LoadTests = self.server.state.loadtests
        settings = store.settings
        if settings.compat_auth != "open" and not (
            token and settings.token and secrets.compare_digest(token, settings.token)
        ):
            match = None
        if match is None or length is None or length > self.max_body:
            await self.app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if message.get("more_body", False):
            parts = [body]
            while message.get("more_body", False):
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                parts.append(message.get("body", b""))
            body = b"".join(parts)
        elif message["type"] == "http.disconnect":
            return
        try:
            status, answer = await put_metrics_body(self.server, match[1], match[2], body)
        except sa.exc.OperationalError:
            status = 503
            answer = b'{"detail":"the database is unavailable; retry later","errors":[]}'
        except Exception:
            log.exception("PUT %s failed", scope["path"])
            status, answer = 500, b'{"detail":"internal server error","errors":[]}'
        headers = [*_FAST_HEADERS, (b"content-length", b"%d" % len(answer))]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        if scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
