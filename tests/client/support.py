"""A tiny real HTTP server for the client's fault cases, which perffarm does not produce on
demand: it answers scripted faults first (503 with Retry-After, 502, 413, garbage, ...),
states another API version in its health answer if told to, and passes every other
request on to a real perffarm server (``upstream``); without one, it answers 404."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.support import free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Answer:
    """One scripted answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Pass the request on first, then answer this instead (an answer lost on the way).
    after_forwarding: bool = False

    @classmethod
    def json(cls, status: int, data: Any, **headers: str) -> Answer:
        return cls(
            status, json.dumps(data).encode(), {"Content-Type": "application/json", **headers}
        )


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (its retries, its timeouts) is no error of the test."""


class FaultServer:
    """``with FaultServer(upstream=server.url) as faults: faults.script.append(Answer(503))``.

    ``only`` limits the scripted answers to paths containing it (the health check and other
    requests pass); ``health`` replaces the fields of the upstream's health answer;
    ``answer`` (a function of method and path) answers instead of the upstream.
    """

    def __init__(self, upstream: str | None = None, *, port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.script: deque[Answer] = deque()
        self.only: str | None = None
        self.health: dict[str, Any] | None = None
        self.answer: Callable[[str, str], Answer] | None = None
        self.seen: list[Seen] = []
        self._server: ThreadingHTTPServer | None = None
        self._http = httpx.Client(timeout=30)
        self._lock = threading.Lock()

    def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        with self._lock:
            self.seen.append(Seen(method, path, headers))
            scripted = None
            if self.script and (self.only is None or self.only in path):
                scripted = self.script.popleft()
        if scripted is not None:
            if scripted.after_forwarding:
                self._forward(method, path, headers, body)
            return scripted
        if self.answer is not None:
            return self.answer(method, path)
        if self.upstream is None:
            return Answer.json(404, {"detail": "Not Found"})
        return self._forward(method, path, headers, body)

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        assert self.upstream is not None
        forwarded = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = self._http.request(method, self.upstream + path, headers=forwarded, content=body)
        content = upstream.content
        if path.startswith("/api/v1/health") and self.health is not None:
            content = json.dumps({**upstream.json(), **self.health}).encode()
        # httpx gave the body decoded: it goes on without its content-encoding.
        drop = HOP_BY_HOP | {"content-encoding"}
        kept = {k: v for k, v in upstream.headers.items() if k.lower() not in drop}
        return Answer(upstream.status_code, content, kept)

    def start(self) -> FaultServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = owner._respond(self.command, self.path, dict(self.headers), body)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Quiet(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._http.close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]
