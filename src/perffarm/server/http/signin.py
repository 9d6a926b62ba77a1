"""Sign-in pages: local accounts, OpenID Connect providers, and the device-flow approval.

Self-contained (own templates under server/http/templates/auth) so that sign-in works whether
or not the dashboard is installed. Every form carries a CSRF token; sign-in attempts are
rate limited per client address and per account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from perffarm.server import permissions
from perffarm.server.core.principal import ANONYMOUS, Principal, User
from perffarm.server.http import oauth
from perffarm.server.http.csrf import CSRF_FIELD, csrf_ok, csrf_token, set_csrf_cookie
from perffarm.server.http.ratelimit import RateLimiter, too_many
from perffarm.server.http.routetable import rule
from perffarm.server.services.authn import SESSION_COOKIE
from perffarm.server.services.oidc import OidcClient, OidcError
from perffarm.server.store import sessions, users
from perffarm.server.store.sessions import SESSION_LIFETIME

router = APIRouter(include_in_schema=False)
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates" / "auth"),
    autoescape=select_autoescape(default=True),
)


def _principal(request: Request) -> Principal:
    return getattr(request.state, "principal", None) or ANONYMOUS


def _safe_next(value: str | None) -> str:
    # Only paths on this server: an open redirect would turn the sign-in page into a
    # phishing helper.
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    token, new = csrf_token(request)
    who = _principal(request)
    html = _templates.get_template(name).render(
        csrf=token, user=who.user if who.via_session else None, **context
    )
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    if new:
        set_csrf_cookie(response, token, request)
    return response


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def start_session(request: Request, response: Response, user_id: int) -> None:
    with request.app.state.engine.connect() as conn:
        value = sessions.start(conn, user_id)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        # Lax: the cookie must come along when the provider redirects back, but never
        # with a cross-site POST.
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.get("/signin", response_class=HTMLResponse, openapi_extra=rule(permissions.SIGNING_IN))
def signin_form(request: Request, next: str = "/") -> HTMLResponse:
    return page(
        request,
        "signin.html",
        title="Sign in",
        next=_safe_next(next),
        providers=request.app.state.settings.oidc_providers,
    )


@router.post("/signin", openapi_extra=rule(permissions.SIGNING_IN))
async def signin(request: Request) -> Response:
    form = await oauth.read_form(request)
    name = form.get("username", "").strip()
    limiter: RateLimiter = request.app.state.signin_limiter
    wait = await run_in_threadpool(limiter.hit, f"ip:{_client_ip(request)}", f"user:{name.lower()}")
    if wait:
        return too_many(wait)
    target = _safe_next(form.get("next"))
    providers = request.app.state.settings.oidc_providers
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return page(
            request,
            "signin.html",
            403,
            title="Sign in",
            next=target,
            providers=providers,
            error="The form expired: please sign in again.",
        )

    def check() -> User | None:
        with request.app.state.engine.connect() as conn:
            user = users.authenticate_password(conn, name, form.get("password", ""))
            if user is not None and not user.disabled and user.approved:
                users.touch_sign_in(conn, user.id)
                return user
            return None

    user = await run_in_threadpool(check)
    if user is None:
        # One message for every failure: which names exist is nobody's business.
        return page(
            request,
            "signin.html",
            401,
            title="Sign in",
            next=target,
            providers=providers,
            error="Wrong user name or password.",
        )
    response = RedirectResponse(target, status_code=303)
    await run_in_threadpool(start_session, request, response, user.id)
    return response


@router.post("/signout", openapi_extra=rule(permissions.SIGNING_IN))
async def signout(request: Request) -> Response:
    form = await oauth.read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return page(
            request,
            "message.html",
            403,
            title="Sign out",
            message="The form expired: reload the page and try again.",
        )
    cookie = request.cookies.get(SESSION_COOKIE)

    def forget() -> None:
        with request.app.state.engine.connect() as conn:
            sessions.end(conn, cookie)

    await run_in_threadpool(forget)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- device flow approval ------------------------------------------------------------------


def _need_session(request: Request, target: str) -> Response | None:
    if not _principal(request).via_session:
        return RedirectResponse("/signin?next=" + oauth.quote_path(target), status_code=303)
    return None


@router.get("/device", response_class=HTMLResponse, openapi_extra=rule(permissions.WEB_SESSION))
def device_form(request: Request, user_code: str = "") -> Response:
    target = "/device" + (f"?user_code={user_code}" if user_code else "")
    redirect = _need_session(request, target)
    if redirect is not None:
        return redirect
    return page(request, "device.html", title="Sign in a command line", user_code=user_code[:20])


@router.post("/device", openapi_extra=rule(permissions.WEB_SESSION))
async def device_submit(request: Request) -> Response:
    redirect = _need_session(request, "/device")
    if redirect is not None:
        return redirect
    form = await oauth.read_form(request)
    who = _principal(request)
    assert who.user is not None
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return page(
            request,
            "device.html",
            403,
            title="Sign in a command line",
            user_code="",
            error="The form expired: please enter the code again.",
        )
    limiter: RateLimiter = request.app.state.signin_limiter
    wait = await run_in_threadpool(limiter.hit, f"device:{who.user.id}")
    if wait:
        return too_many(wait)
    code = form.get("user_code", "")
    action = form.get("action", "")

    user_id = who.user.id

    def run() -> tuple[str, Any]:
        with request.app.state.engine.connect() as conn:
            if action in ("approve", "deny"):
                client = oauth.approve_user_code(conn, code, user_id, allow=action == "approve")
                return ("done", client)
            return ("confirm", oauth.pending_code(conn, code))

    step, value = await run_in_threadpool(run)
    if value is None:
        return page(
            request,
            "device.html",
            400,
            title="Sign in a command line",
            user_code="",
            error="That code is unknown or expired: check it, or run perffarm login again.",
        )
    if step == "confirm":
        return page(
            request,
            "device_confirm.html",
            title="Approve this sign-in?",
            client_id=value.client_id,
            scopes=value.scopes,
            user_code=oauth.format_user_code(value.user_code),
        )
    message = (
        "Approved: you can close this page and go back to the command line."
        if action == "approve"
        else "Denied: the command line will not be signed in."
    )
    return page(request, "message.html", title="Done", message=message)


# -- OpenID Connect ----------------------------------------------------------------------


def _provider(request: Request, name: str) -> OidcClient | None:
    clients: dict[str, OidcClient] = request.app.state.oidc_clients
    return clients.get(name)


@router.get("/auth/oidc/{name}", openapi_extra=rule(permissions.SIGNING_IN))
async def oidc_start(request: Request, name: str, next: str = "/") -> Response:
    client = _provider(request, name)
    if client is None:
        return page(
            request,
            "message.html",
            404,
            title="Sign in",
            message=f"No sign-in provider named {name!r}.",
        )
    redirect_uri = str(request.url_for("oidc_callback", name=name))
    try:
        url, state, nonce, verifier = await client.start(redirect_uri)
    except OidcError as exc:
        return page(request, "message.html", 502, title="Sign in", message=str(exc))

    def remember() -> None:
        with request.app.state.engine.connect() as conn:
            sessions.remember_state(
                conn,
                state=state,
                provider=name,
                nonce=nonce,
                verifier=verifier,
                next_url=_safe_next(next),
            )

    await run_in_threadpool(remember)
    return RedirectResponse(url, status_code=303)


@router.get(
    "/auth/oidc/{name}/callback", name="oidc_callback", openapi_extra=rule(permissions.SIGNING_IN)
)
async def oidc_callback(request: Request, name: str) -> Response:
    client = _provider(request, name)
    params = request.query_params
    if client is None:
        return page(request, "message.html", 404, title="Sign in", message="Unknown provider.")
    if params.get("error"):
        return page(
            request,
            "message.html",
            400,
            title="Sign in",
            message=f"The provider refused the sign-in ({params['error'][:100]}).",
        )
    state = params.get("state", "")

    def take_state() -> sa.Row | None:
        with request.app.state.engine.connect() as conn:
            return sessions.take_state(conn, state, name)

    row = await run_in_threadpool(take_state) if state else None
    if row is None:
        return page(
            request,
            "message.html",
            400,
            title="Sign in",
            message="This sign-in expired or was used already: start again.",
        )
    redirect_uri = str(request.url_for("oidc_callback", name=name))
    try:
        identity = await client.finish(
            redirect_uri, params.get("code", ""), row.code_verifier, row.nonce
        )
    except OidcError as exc:
        return page(request, "message.html", 400, title="Sign in", message=str(exc))
    approval = request.app.state.settings.user_approval

    def upsert() -> User:
        with request.app.state.engine.connect() as conn:
            return users.upsert_oidc(
                conn,
                provider=name,
                subject=identity.subject,
                preferred_name=identity.preferred_name,
                display_name=identity.display_name,
                email=identity.email,
                avatar_url=identity.avatar_url,
                approved=approval == "auto",
            )

    user = await run_in_threadpool(upsert)
    if user.disabled or not user.approved:
        why = "is disabled" if user.disabled else "waits for an admin's approval"
        return page(
            request,
            "message.html",
            403,
            title="Sign in",
            message=f"Your account {user.name} {why}.",
        )
    response = RedirectResponse(row.next_url, status_code=303)
    await run_in_threadpool(start_session, request, response, user.id)
    return response
