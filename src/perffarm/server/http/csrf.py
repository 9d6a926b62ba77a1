"""CSRF tokens for web forms: double submit (a cookie and a form field that must agree).

A cross-site page can make the browser send the cookie but can neither read it nor put it
in the form.
"""

from __future__ import annotations

import hmac
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response

CSRF_COOKIE = "perffarm_csrf"
CSRF_FIELD = "csrf_token"


def csrf_token(request: Request) -> tuple[str, bool]:
    """The CSRF token for a form, and whether it is new (then it must be set as a cookie)."""
    current = request.cookies.get(CSRF_COOKIE)
    if current and re.fullmatch(r"[A-Za-z0-9_-]{32,64}", current):
        return current, False
    return secrets.token_urlsafe(32), True


def set_csrf_cookie(response: Response, token: str, request: Request) -> None:
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
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie, submitted)
