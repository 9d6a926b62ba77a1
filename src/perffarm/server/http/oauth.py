"""OAuth 2.0 served by perffarm for its command line: the device authorization grant
(RFC 8628), refresh tokens, token revocation (RFC 7009), and the authorization server
metadata that tells a client where all of it is (RFC 8414).

The client is public (a command line cannot keep a secret), so client_id only names it.
Errors follow RFC 6749 section 5.2 (``error``, ``error_description``); ``detail`` repeats
the description so that they read like every other perffarm error.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl, quote

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from perffarm.server import permissions
from perffarm.server.core.errors import Invalid, Unauthorized
from perffarm.server.core.principal import SCOPES
from perffarm.server.core.timeutil import now
from perffarm.server.http.ratelimit import too_many
from perffarm.server.http.routetable import rule
from perffarm.server.store import devicecodes, tokens, users
from perffarm.server.store.devicecodes import DEVICE_CODE_LIFETIME, DeviceCode

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

router = APIRouter(tags=["oauth"])


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (small: the body middleware caps it)."""
    body = await request.body()
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description, "detail": description, "errors": []},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def normalize_user_code(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalnum())


def format_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


@router.get("/.well-known/oauth-authorization-server", openapi_extra=rule(permissions.SIGNING_IN))
def metadata(request: Request) -> dict:
    """Where the device flow's endpoints are (RFC 8414)."""
    base = base_url(request)
    return {
        "issuer": base,
        "device_authorization_endpoint": f"{base}/oauth/device_authorization",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "grant_types_supported": [DEVICE_GRANT, "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": list(SCOPES),
        "service_documentation": f"{base}/api/v1/docs",
    }


@router.post("/oauth/device_authorization", openapi_extra=rule(permissions.SIGNING_IN))
async def device_authorization(request: Request) -> JSONResponse:
    """Start a device sign-in: a device code for the client, a user code for the person.
    Limited per client address and in all (every server process counts together): each
    request stores a code."""
    address = request.client.host if request.client else "unknown"
    for limiter, key in zip(
        request.app.state.device_limiters, (f"device:{address}", "device"), strict=True
    ):
        wait = await run_in_threadpool(limiter.hit, key)
        if wait:
            return too_many(wait, limiter.what)
    form = await read_form(request)
    client_id = form.get("client_id", "").strip()
    if not client_id:
        return oauth_error("invalid_request", "client_id is missing")
    try:
        scopes = tokens.parse_scopes(form.get("scope") or "upload")
    except Invalid as exc:
        return oauth_error("invalid_scope", str(exc))
    interval = request.app.state.settings.device_interval
    device_code = secrets.token_urlsafe(32)

    def store() -> str:
        with request.app.state.engine.connect() as conn:
            return devicecodes.create(
                conn,
                device_code,
                client_id=client_id,
                scopes=tokens.scope_text(scopes),
                interval=interval,
            )

    code = await run_in_threadpool(store)
    verification = f"{base_url(request)}/device"
    return JSONResponse(
        {
            "device_code": device_code,
            "user_code": format_user_code(code),
            "verification_uri": verification,
            "verification_uri_complete": f"{verification}?user_code={format_user_code(code)}",
            "expires_in": int(DEVICE_CODE_LIFETIME.total_seconds()),
            "interval": interval,
        },
        headers={"Cache-Control": "no-store"},
    )


def _token_answer(
    conn: sa.Connection,
    user_id: int,
    scopes: frozenset[str],
    client: str,
    family: str | None = None,
) -> dict:
    family = family or tokens.new_family()
    _, access = tokens.issue(
        conn,
        user_id,
        kind="access",
        scopes=scopes,
        lifetime=tokens.ACCESS_LIFETIME,
        name=f"sign-in from {client}",
        family=family,
    )
    _, refresh = tokens.issue(
        conn,
        user_id,
        kind="refresh",
        scopes=scopes,
        lifetime=tokens.REFRESH_LIFETIME,
        name=f"sign-in from {client}",
        family=family,
    )
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": int(tokens.ACCESS_LIFETIME.total_seconds()),
        "refresh_token": refresh,
        "scope": tokens.scope_text(scopes),
    }


def _device_grant(conn: sa.Connection, form: dict[str, str]) -> JSONResponse | dict:
    row = devicecodes.by_device_code(conn, form.get("device_code", ""))
    if row is None or row.client_id != form.get("client_id", row.client_id):
        return oauth_error("invalid_grant", "unknown device code: start the sign-in again")
    moment = now()
    if row.expires_at <= moment or row.status == "used":
        return oauth_error("expired_token", "the device code expired: start the sign-in again")
    if row.status == "denied":
        return oauth_error("access_denied", "the sign-in was denied in the browser")
    if row.status == "pending":
        devicecodes.note_poll(conn, row.id, moment)
        # RFC 8628 section 3.5: polling faster than the interval earns slow_down.
        if row.last_poll is not None and (moment - row.last_poll).total_seconds() < (
            row.interval * 0.8
        ):
            return oauth_error("slow_down", "polling too fast: wait longer between requests")
        return oauth_error("authorization_pending", "waiting for approval in the browser")
    if not devicecodes.spend(conn, row.id) or row.user_id is None:
        return oauth_error("expired_token", "the device code was used already")
    user = users.get(conn, user_id=row.user_id)
    if user.disabled:
        return oauth_error("access_denied", "this user is disabled")
    scopes = frozenset(row.scopes.split())
    return _token_answer(
        conn, user.id, scopes if user.is_admin else scopes - {"admin"}, row.client_id
    )


def _refresh_grant(conn: sa.Connection, form: dict[str, str]) -> JSONResponse | dict:
    given = form.get("refresh_token", "")
    try:
        info = tokens.resolve(conn, given, kinds=("refresh",))
    except Unauthorized as exc:
        spent = tokens.id_of(conn, given) if tokens.looks_like_token(given) else None
        if spent is not None:
            # A spent refresh token used again: whoever holds it stole it, or the owner's
            # copy was stolen. The whole sign-in ends, with what was made with it.
            tokens.revoke(conn, spent, user_id=None)
        return oauth_error("invalid_grant", f"{exc}: sign in again with `perffarm login`")
    user = users.get(conn, user_id=info.user_id)
    if user.disabled:
        return oauth_error("invalid_grant", "this user is disabled")
    # Rotation: the refresh token used now is spent, together with its access token, so a
    # stolen refresh token works once at most; the sign-in (its family) goes on, and so do
    # the tokens made with it.
    assert info.family is not None
    spent_ids = [m.id for m in tokens.family_of(conn, info.family) if m.revoked_at is None]
    tokens.retire(conn, spent_ids)
    scopes = info.scopes
    wanted = form.get("scope")
    if wanted:
        try:
            scopes = scopes & tokens.parse_scopes(wanted)
        except Invalid as exc:
            return oauth_error("invalid_scope", str(exc))
    return _token_answer(conn, user.id, scopes, "refresh", family=info.family)


@router.post("/oauth/token", openapi_extra=rule(permissions.SIGNING_IN))
async def token(request: Request) -> JSONResponse:
    """Tokens for an approved device code, or fresh ones for a refresh token."""
    form = await read_form(request)
    grant = form.get("grant_type", "")
    handlers = {DEVICE_GRANT: _device_grant, "refresh_token": _refresh_grant}
    if grant not in handlers:
        return oauth_error(
            "unsupported_grant_type",
            f"grant_type must be {DEVICE_GRANT} or refresh_token",
        )

    def run() -> JSONResponse | dict:
        with request.app.state.engine.connect() as conn:
            return handlers[grant](conn, form)

    answer = await run_in_threadpool(run)
    if isinstance(answer, JSONResponse):
        return answer
    return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.post("/oauth/revoke", openapi_extra=rule(permissions.SIGNING_IN))
async def revoke(request: Request) -> JSONResponse:
    """Revoke an access or refresh token and its sign-in (RFC 7009: always 200)."""
    form = await read_form(request)
    value = form.get("token", "")

    def run() -> None:
        with request.app.state.engine.connect() as conn:
            token_id = tokens.id_of(conn, value)
            if token_id is not None:
                tokens.revoke(conn, token_id, user_id=None)

    if value:
        await run_in_threadpool(run)
    return JSONResponse({}, headers={"Cache-Control": "no-store"})


def approve_user_code(conn: sa.Connection, text: str, user_id: int, *, allow: bool) -> str | None:
    """Approve (or deny) the device sign-in with this user code; None when the code is no good."""
    row = pending_code(conn, text)
    if row is None:
        return None
    devicecodes.decide(conn, row.id, user_id, allow=allow)
    return row.client_id


def pending_code(conn: sa.Connection, text: str) -> DeviceCode | None:
    code = normalize_user_code(text)
    if len(code) != 8:
        return None
    row = devicecodes.by_user_code(conn, code)
    if row is None or row.status != "pending" or row.expired:
        return None
    return row


def quote_path(path: str) -> str:
    return quote(path, safe="/")
