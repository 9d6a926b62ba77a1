"""Request hardening: who is calling (once per request), security headers, CSRF tokens for
web forms, rate limits on sign-in attempts, and a logging filter that hides secrets.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time
from collections import deque
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perffarm.server.auth import (
    SESSION_COOKIE,
    AuthRefused,
    Principal,
    resolve_bearer,
    resolve_session,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Answered to anybody, credentials or not: the agent's probe must measure the network, not
# a token lookup, and a client must learn the API version before it can sign in.
UNCHECKED_PATHS = frozenset({"/api/v1/health", "/api/v1/ping", "/api/v1/schema/run"})
# Reachable without signing in on a private farm: what signing in itself needs.
SIGN_IN_PREFIXES = ("/.well-known/", "/oauth/", "/signin", "/signout", "/auth/", "/device")
CSRF_COOKIE = "perffarm_csrf"
CSRF_FIELD = "csrf_token"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": []}, status_code=status, headers=headers)


class AuthMiddleware:
    """Resolves the caller into ``request.state.principal`` and applies the global rules.

    - a credential that is given but wrong, expired or revoked is refused (401) everywhere,
      never silently treated as anonymous;
    - a token without the ``upload`` scope may only read (403 on any other method);
    - on a private farm an anonymous caller reaches only what signing in needs.
    The session cookie counts for safe methods only (and for the sign-in forms, which
    check a CSRF token themselves): a cross-site form post carries the cookie, not intent.
    """

    def __init__(self, app: ASGIApp, *, private: bool) -> None:
        self.app = app
        self.private = private

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCHECKED_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        method = scope["method"]
        try:
            principal = await run_in_threadpool(self._resolve, request)
        except AuthRefused as exc:
            await _json(exc.status, exc.detail, {"WWW-Authenticate": "Bearer"})(
                scope, receive, send
            )
            return
        path = scope["path"]
        is_form = path.startswith(SIGN_IN_PREFIXES)
        if principal.via_session and method not in SAFE_METHODS and not is_form:
            principal = Principal()
        if (
            principal.kind == "user"
            and not principal.via_session
            and method not in SAFE_METHODS
            and "upload" not in principal.scopes
            and not path.startswith("/oauth/")
        ):
            await _json(
                403,
                "this token may only read (scope read): create one with scope "
                "upload or admin to change anything",
            )(scope, receive, send)
            return
        if self.private and principal.anonymous and not is_form:
            if method == "GET" and not path.startswith("/api/") and _wants_html(request):
                target = "/signin?next=" + quote(path, safe="/")
                await RedirectResponse(target, status_code=303)(scope, receive, send)
                return
            await _json(
                401,
                "this farm is private: sign in (`perffarm login`) or send a token with the "
                "read scope",
                {"WWW-Authenticate": "Bearer"},
            )(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _resolve(self, request: Request) -> Principal:
        state = request.app.state
        with state.engine.connect() as conn:
            header = request.headers.get("authorization")
            if header:
                return resolve_bearer(conn, header, state.admin_hash)
            return resolve_session(conn, request.cookies.get(SESSION_COOKIE))


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


class SecurityHeadersMiddleware:
    """Headers that make pages harder to abuse: no framing, no sniffing, a strict CSP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        # The interactive API docs load their scripts from a CDN; every other page is ours.
        strict = not scope["path"].startswith("/api/v1/docs")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"DENY",
                    b"referrer-policy": b"same-origin",
                }
                content_type = dict(headers).get(b"content-type", b"")
                if strict and content_type.startswith(b"text/html"):
                    extra[b"content-security-policy"] = CSP.encode()
                if https:
                    extra[b"strict-transport-security"] = b"max-age=31536000; includeSubDomains"
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


# -- CSRF ------------------------------------------------------------------------------


def csrf_token(request: Request) -> tuple[str, bool]:
    """The CSRF token for a form, and whether it is new (then it must be set as a cookie).

    Double submit: the token travels in a cookie and in the form; a cross-site page can
    make the browser send the cookie but can neither read it nor put it in the form.
    """
    current = request.cookies.get(CSRF_COOKIE)
    if current and re.fullmatch(r"[A-Za-z0-9_-]{32,64}", current):
        return current, False
    return secrets.token_urlsafe(32), True


def set_csrf_cookie(response, token: str, request: Request) -> None:  # type: ignore[no-untyped-def]
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and submitted) and hmac.compare_digest(cookie, submitted or "")


# -- rate limits -----------------------------------------------------------------------


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (a sliding window).

    In memory, per server process: with N workers an attacker gets N times the attempts,
    which is still far too few to guess an argon2-protected password.
    """

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, *keys: str) -> float:
        """Record an attempt for every key; seconds to wait when any key is over its limit."""
        moment = time.monotonic()
        wait = 0.0
        with self._lock:
            if len(self._events) > 100_000:
                self._events.clear()
            for key in keys:
                events = self._events.setdefault(key, deque())
                while events and events[0] <= moment - self.window:
                    events.popleft()
                if len(events) >= self.limit:
                    wait = max(wait, events[0] + self.window - moment)
            if wait == 0.0:
                for key in keys:
                    self._events[key].append(moment)
        return wait


def too_many(wait: float) -> JSONResponse:
    seconds = str(max(1, int(wait + 0.999)))
    detail = f"too many sign-in attempts: wait {seconds} s and try again"
    return _json(429, detail, {"Retry-After": seconds})


# -- logs ------------------------------------------------------------------------------

_SECRET_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1[hidden]"),
    (re.compile(r"\bpf[tar]_[A-Za-z0-9]{12}_[A-Za-z0-9_-]+"), "[token]"),
    (
        re.compile(
            r"(?i)\b(code|state|device_code|refresh_token|access_token|token|password|"
            r"client_secret|code_verifier|csrf_token)=[^&\s\"']+"
        ),
        r"\1=[hidden]",
    ),
    (
        re.compile(
            r"(?i)(\"(?:password|secret|token|access_token|refresh_token)\"\s*:\s*\")[^\"]*"
        ),
        r"\1[hidden]",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretsFilter(logging.Filter):
    """Hides tokens, codes and passwords in log records (access logs show query strings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter() -> None:
    """Put the filter on the loggers the server writes to (idempotent)."""
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "perffarm", "httpx"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretsFilter) for f in logger.filters):
            logger.addFilter(SecretsFilter())
        for handler in logger.handlers:
            if not any(isinstance(f, SecretsFilter) for f in handler.filters):
                handler.addFilter(SecretsFilter())
