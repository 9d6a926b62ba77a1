"""What every route needs: a database connection and who is calling."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from perffarm.server import machines
from perffarm.server.auth import Bearer, same_hash

bearer = HTTPBearer(
    auto_error=False,
    description="A machine's `name:secret`, or the admin token.",
)


def connection(request: Request) -> Iterator[sa.Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


@dataclass(frozen=True)
class Caller:
    admin: bool = False
    machine: machines.Machine | None = None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    conn: sa.Connection = Depends(connection),
) -> Caller:
    """Anonymous when no token is given; a wrong token is refused rather than ignored."""
    if credentials is None:
        return Caller()
    token = Bearer.parse(f"Bearer {credentials.credentials}")
    if token is None:
        return Caller()
    if token.machine is None:
        if same_hash(token.token, request.app.state.admin_hash):
            return Caller(admin=True)
        raise _unauthorized("wrong admin token")
    machine = machines.authenticate(conn, token.machine, token.token)
    conn.rollback()
    if machine is None:
        raise _unauthorized(
            f"wrong machine name or secret for machine {token.machine!r}: "
            "register the machine again with `perffarm machine register`"
        )
    return Caller(machine=machine)


def machine_caller(who: Caller = Depends(caller)) -> machines.Machine:
    if who.machine is None:
        raise _unauthorized(
            "this needs a machine's credentials (Authorization: Bearer NAME:SECRET); "
            "register one with `perffarm machine register`"
        )
    return who.machine


def admin_caller(who: Caller = Depends(caller)) -> Caller:
    if not who.admin:
        raise _unauthorized("this needs the admin token (Authorization: Bearer TOKEN)")
    return who
