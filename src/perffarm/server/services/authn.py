"""Who is calling, from the credential a request carries: the same answer for HTTP, gRPC
and the web pages.

A credential that is given but wrong, expired or revoked is refused (``Unauthorized``, or
``Forbidden`` for a user waiting for approval), never silently treated as anonymous. A web
session that is unknown or over is simply anonymous: a browser keeps old cookies.
"""

from __future__ import annotations

import sqlalchemy as sa

from perffarm.server.core.errors import Forbidden, Unauthorized
from perffarm.server.core.principal import ALL_SCOPES, Principal, User
from perffarm.server.core.secrets import Bearer, same_hash
from perffarm.server.core.timeutil import now
from perffarm.server.store import machines, sessions, tokens, users

SESSION_COOKIE = "perffarm_session"


def _user_scopes(user: User, granted: frozenset[str]) -> frozenset[str]:
    return granted if user.is_admin else granted - {"admin"}


def _usable_user(user: User) -> None:
    if user.disabled:
        raise Unauthorized(f"user {user.name!r} is disabled: ask an admin")
    if not user.approved:
        raise Forbidden(f"user {user.name!r} waits for an admin's approval (perffarm user approve)")


def _machine(conn: sa.Connection, name: str, secret: str) -> Principal:
    found = machines.authenticate(conn, name, secret)
    if found == "revoked":
        raise Unauthorized(
            f"the secret of machine {name!r} was revoked: register the machine "
            "again or ask its owner for a new secret"
        )
    if found == "retired":
        raise Forbidden(
            f"machine {name!r} is retired: its history stays, but it uploads no more; "
            "register a new machine to go on measuring"
        )
    if isinstance(found, str):
        raise Unauthorized(
            f"wrong machine name or secret for machine {name!r}: "
            "register the machine again with `perffarm machine register`"
        )
    if found.owner_user_id is not None:
        owner = users.get(conn, user_id=found.owner_user_id)
        if owner.disabled:
            raise Unauthorized(f"machine {found.name!r} belongs to a disabled user")
    return Principal(kind="machine", machine=found, scopes=frozenset({"read", "upload"}))


def _token(conn: sa.Connection, token: str) -> Principal:
    try:
        info = tokens.resolve(conn, token, kinds=("personal", "access"))
    except Unauthorized as exc:
        raise Unauthorized(
            f"{exc}: sign in again (`perffarm login`) or use another token"
        ) from None
    user = users.get(conn, user_id=info.user_id)
    _usable_user(user)
    if info.last_used_at is None or now() - info.last_used_at > tokens.USE_RESOLUTION:
        # Only when stale: a write on every request would serialize SQLite readers.
        tokens.mark_used(conn, info.id)
    return Principal(
        kind="user", user=user, scopes=_user_scopes(user, info.scopes), token_id=info.id
    )


def resolve_bearer(conn: sa.Connection, header: str | None, admin_hash: str) -> Principal:
    """The caller named by an Authorization header; Unauthorized when it is wrong."""
    if not header:
        return Principal()
    bearer = Bearer.parse(header)
    if bearer is None:
        raise Unauthorized("unsupported Authorization header: send `Authorization: Bearer TOKEN`")
    if bearer.machine is not None and not tokens.looks_like_token(bearer.token):
        return _machine(conn, bearer.machine, bearer.token)
    if tokens.looks_like_token(bearer.token):
        return _token(conn, bearer.token)
    if same_hash(bearer.token, admin_hash):
        return Principal(kind="admin-token", scopes=ALL_SCOPES)
    raise Unauthorized("wrong token: not a perffarm token, a machine secret or the admin token")


def resolve_session(conn: sa.Connection, cookie: str | None) -> Principal:
    """The user of a web session cookie; anonymous when the session is unknown or over."""
    user_id = sessions.user_of(conn, cookie)
    if user_id is None:
        return Principal()
    user = users.get(conn, user_id=user_id)
    if user.disabled or not user.approved:
        return Principal()
    return Principal(
        kind="user", user=user, scopes=_user_scopes(user, ALL_SCOPES), via_session=True
    )
