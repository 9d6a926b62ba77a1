"""What routes depend on: a database connection, who is calling, and the permission a
route needs before it runs.

``AuthMiddleware`` resolves the principal once per request; ``principal`` reads it. The
rules themselves live in ``server/permissions.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from perffarm.server import permissions
from perffarm.server.core.principal import ANONYMOUS, Machine, Principal
from perffarm.server.permissions import MACHINE_HEADER
from perffarm.server.store import machines

bearer = HTTPBearer(
    auto_error=False,
    description="A user's token (`pft_...`, `pfa_...`), a machine's `name:secret`, "
    "or the admin token.",
)


def connection(request: Request) -> Iterator[sa.Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


def principal(
    request: Request,
    # Declared so that the OpenAPI document shows the security scheme; the middleware has
    # already checked whatever was sent.
    _credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Principal:
    """Anonymous when nothing was sent; wrong credentials never get this far (401)."""
    return getattr(request.state, "principal", None) or ANONYMOUS


def acting_principal(who: Principal = Depends(principal)) -> Principal:
    """A caller with credentials, checked before the route's body is read: an anonymous
    write is refused as such, never answered with the body's field errors."""
    permissions.may_act_on_alerts(who)
    return who


def user_principal(who: Principal = Depends(principal)) -> Principal:
    permissions.require_user(who)
    return who


def admin_principal(who: Principal = Depends(principal)) -> Principal:
    permissions.require_admin(who)
    return who


def upload_machine(
    request: Request,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Machine:
    """The machine to upload as (``permissions.upload_as``): a user's token names it in the
    X-Perffarm-Machine header, one header for a whole batch, checked before any document
    is read."""
    if who.machine is not None:
        return who.machine
    name = request.headers.get(MACHINE_HEADER)
    named = machines.identity(conn, name) if name and not who.anonymous else None
    conn.rollback()
    return permissions.upload_as(who, name, named)
