"""What every route needs: a database connection and who is calling.

``AuthMiddleware`` (server/security.py) resolves the caller once per request; these
dependencies turn it into the ``Caller`` routes use and refuse what a route may not do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from perffarm.server import machines
from perffarm.server.auth import Principal
from perffarm.server.users import User

MACHINE_HEADER = "X-Perffarm-Machine"

bearer = HTTPBearer(
    auto_error=False,
    description="A user's token (`pft_...`, `pfa_...`), a machine's `name:secret`, "
    "or the admin token.",
)


def connection(request: Request) -> Iterator[sa.Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


@dataclass(frozen=True)
class Caller:
    admin: bool = False
    machine: machines.Machine | None = None
    user: User | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def anonymous(self) -> bool:
        return not self.admin and self.machine is None and self.user is None

    @property
    def viewer(self) -> int | None:
        """The signed-in user's id: besides what everybody sees, a user sees the runs and
        alerts of their own machines before approval (``queries.visible``)."""
        return self.user.id if self.user is not None else None

    def can(self, scope: str) -> bool:
        return scope in self.scopes


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)


def principal(request: Request) -> Principal:
    return getattr(request.state, "principal", None) or Principal()


def caller(
    request: Request,
    # Declared so that the OpenAPI document shows the security scheme; the middleware has
    # already checked whatever was sent.
    _credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Caller:
    """Anonymous when nothing was sent; wrong credentials never get this far (401)."""
    who = principal(request)
    return Caller(admin=who.admin, machine=who.machine, user=who.user, scopes=who.scopes)


def user_caller(who: Caller = Depends(caller)) -> Caller:
    if who.user is None:
        raise _unauthorized(
            "this needs a signed-in user: `perffarm login --server URL`, or a token "
            "(Authorization: Bearer pft_...)"
        )
    return who


def machine_caller(
    request: Request,
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> machines.Machine:
    """The machine to upload as: the one authenticated by its secret, or a user's own.

    A user's token with the upload scope names the machine in the X-Perffarm-Machine
    header (one header for a whole batch, checked before any document is read).
    """
    if who.machine is not None:
        return who.machine
    if who.user is None and not who.admin:
        raise _unauthorized(
            "this needs a machine's credentials (Authorization: Bearer NAME:SECRET), or a "
            f"user's upload token with the machine named in {MACHINE_HEADER}; register a "
            "machine with `perffarm machine register`"
        )
    if not who.can("upload"):
        raise _forbidden("this token may only read: uploading needs the upload scope")
    name = request.headers.get(MACHINE_HEADER)
    if not name:
        raise HTTPException(400, f"name the machine to upload as in the {MACHINE_HEADER} header")
    row = machines.owner_row(conn, name)
    conn.rollback()
    owns = row is not None and who.user is not None and row.owner_user_id == who.user.id
    if row is None or not (owns or who.admin):
        raise _forbidden(f"you may not upload as machine {name!r}: only its owner or an admin may")
    return machines.Machine(id=row.id, name=row.name, owner=row.owner, approved=row.approved)


def admin_caller(who: Caller = Depends(caller)) -> Caller:
    if who.anonymous:
        raise _unauthorized(
            "this needs an admin: the admin token (Authorization: Bearer TOKEN) or an admin "
            "user's token with the admin scope"
        )
    if not who.admin:
        raise _forbidden("this needs an admin (an admin user's token with the admin scope)")
    return who
