"""Middleware: who is calling (resolved once per request, with the global rules of
credentials) and the security headers of every answer."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perffarm.server.core.errors import Forbidden, Unauthorized
from perffarm.server.core.principal import Principal
from perffarm.server.services.authn import SESSION_COOKIE, resolve_bearer, resolve_session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Answered to anybody, credentials or not: the agent's probe must measure the network, not
# a token lookup, and a client must learn the API version before it can sign in.
UNCHECKED_PATHS = frozenset({"/api/v1/health", "/api/v1/ping", "/api/v1/schema/run"})
# Reachable without signing in on a private farm: what signing in itself needs.
SIGN_IN_PREFIXES = ("/.well-known/", "/oauth/", "/signin", "/signout", "/auth/", "/device")

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
    - a token without the ``upload`` scope may only read (403 on any other method), except
      to sign in (the sign-in routes and forms decide for themselves);
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
        except (Unauthorized, Forbidden) as exc:
            status = 403 if isinstance(exc, Forbidden) else 401
            await _json(status, exc.message, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
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
            and not is_form
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
