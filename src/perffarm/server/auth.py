"""Secrets and who is calling: a machine, a user (by token or web session), or the admin.

Callers (see ``Principal``): a machine (``Bearer NAME:SECRET``), a user by personal or
device-flow token (``Bearer pft_...``/``pfa_...``), a user by web session cookie (safe
methods and the sign-in forms only, so that no cross-site form can act with it), or the
admin token (a built-in admin, kept so that everything built before users keeps working).

Secrets and the admin token are 256-bit random strings, stored only as their SHA-256.
A slow password hash (bcrypt, argon2) protects low-entropy human passwords against
guessing; against a 256-bit random secret guessing is hopeless anyway, so a plain
SHA-256 gives the same protection if the database leaks and keeps each request cheap.

Both travel as ``Authorization: Bearer <token>``: a machine's token is
``<machine name>:<secret>`` (machine names cannot contain ``:``), the admin's token is
the bare admin token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perffarm.server.db import tables as t

if TYPE_CHECKING:
    from perffarm.server.machines import Machine
    from perffarm.server.users import User

ADMIN_HASH_KEY = "admin_token_sha256"
SESSION_COOKIE = "perffarm_session"
ALL_SCOPES = frozenset({"read", "upload", "admin"})
REVOKED_PREFIX = "revoked:"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_hash(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


@dataclass(frozen=True)
class Bearer:
    token: str
    machine: str | None = None

    @classmethod
    def parse(cls, header: str | None) -> Bearer | None:
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        name, sep, secret = token.partition(":")
        if sep:
            return cls(token=secret, machine=name)
        return cls(token=token)


def ensure_admin_token(engine: Engine, given: str | None) -> tuple[str, str | None]:
    """The admin token's hash, and the token itself when it was generated just now.

    A token given on the command line or in the environment wins and is never stored. With
    none given, the first start generates one, stores its hash and returns it to be shown
    once; concurrent first starts agree on whichever insert landed first.
    """
    if given:
        return hash_secret(given), None
    with engine.begin() as conn:
        stored = conn.execute(
            sa.select(t.server_settings.c.value).where(t.server_settings.c.key == ADMIN_HASH_KEY)
        ).scalar_one_or_none()
        if stored:
            return stored, None
    token = new_secret()
    try:
        with engine.begin() as conn:
            conn.execute(
                t.server_settings.insert().values(key=ADMIN_HASH_KEY, value=hash_secret(token))
            )
    except sa.exc.IntegrityError:
        with engine.begin() as conn:
            stored = conn.execute(
                sa.select(t.server_settings.c.value).where(
                    t.server_settings.c.key == ADMIN_HASH_KEY
                )
            ).scalar_one()
        return stored, None
    return hash_secret(token), token


def reset_admin_token(engine: Engine) -> str:
    """Replace the stored admin token with a new one (the old one stops working)."""
    token = new_secret()
    with engine.begin() as conn:
        conn.execute(t.server_settings.delete().where(t.server_settings.c.key == ADMIN_HASH_KEY))
        conn.execute(
            t.server_settings.insert().values(key=ADMIN_HASH_KEY, value=hash_secret(token))
        )
    return token


class AuthRefused(Exception):
    """Credentials that were given but cannot be used: 401 (or 403) with this detail."""

    def __init__(self, detail: str, status: int = 401) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``scopes`` is what the credential allows, capped by the user's rights."""

    kind: str = "anonymous"  # anonymous | admin-token | machine | user
    user: User | None = None
    machine: Machine | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    token_id: str | None = None
    via_session: bool = False

    @property
    def viewer(self) -> int | None:
        """The signed-in user's id, for the visibility rule (``queries.visible``)."""
        return self.user.id if self.user is not None else None

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes and (
            self.kind == "admin-token" or (self.user is not None and self.user.is_admin)
        )

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"


def _user_scopes(user: User, granted: frozenset[str]) -> frozenset[str]:
    return granted if user.is_admin else granted - {"admin"}


def _usable_user(user: User) -> None:
    if user.disabled:
        raise AuthRefused(f"user {user.name!r} is disabled: ask an admin")
    if not user.approved:
        raise AuthRefused(
            f"user {user.name!r} waits for an admin's approval (perffarm user approve)", 403
        )


def resolve_bearer(conn: sa.Connection, header: str | None, admin_hash: str) -> Principal:
    """The caller named by an Authorization header; AuthRefused when it is wrong."""
    from perffarm.server import machines, tokens, users
    from perffarm.server.timeutil import now

    if not header:
        return Principal()
    token = Bearer.parse(header)
    if token is None:
        raise AuthRefused("unsupported Authorization header: send `Authorization: Bearer TOKEN`")
    if token.machine is not None and not tokens.looks_like_token(token.token):
        machine = machines.authenticate(conn, token.machine, token.token)
        if machine is None:
            stored = conn.execute(
                sa.select(t.machines.c.secret_hash).where(t.machines.c.name == token.machine)
            ).scalar_one_or_none()
            if stored is not None and stored.startswith(REVOKED_PREFIX):
                raise AuthRefused(
                    f"the secret of machine {token.machine!r} was revoked: register the machine "
                    "again or ask its owner for a new secret"
                )
            raise AuthRefused(
                f"wrong machine name or secret for machine {token.machine!r}: "
                "register the machine again with `perffarm machine register`"
            )
        owner_id = conn.execute(
            sa.select(t.machines.c.owner_user_id).where(t.machines.c.id == machine.id)
        ).scalar_one_or_none()
        if owner_id is not None:
            owner = users.get(conn, user_id=owner_id)
            if owner.disabled:
                raise AuthRefused(f"machine {machine.name!r} belongs to a disabled user")
        return Principal(kind="machine", machine=machine, scopes=frozenset({"read", "upload"}))
    if tokens.looks_like_token(token.token):
        try:
            info = tokens.resolve(conn, token.token, kinds=("personal", "access"))
        except tokens.TokenRefused as exc:
            raise AuthRefused(
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
    if same_hash(token.token, admin_hash):
        return Principal(kind="admin-token", scopes=ALL_SCOPES)
    raise AuthRefused("wrong token: not a perffarm token, a machine secret or the admin token")


def resolve_session(conn: sa.Connection, cookie: str | None) -> Principal:
    """The user of a web session cookie; anonymous when the session is unknown or over."""
    from perffarm.server import users
    from perffarm.server.timeutil import now, utc

    if not cookie or len(cookie) > 200:
        return Principal()
    row = conn.execute(
        sa.select(t.web_sessions.c.user_id, t.web_sessions.c.expires_at).where(
            t.web_sessions.c.id_hash == hash_secret(cookie)
        )
    ).first()
    if row is None or utc(row.expires_at) <= now():
        return Principal()
    user = users.get(conn, user_id=row.user_id)
    if user.disabled or not user.approved:
        return Principal()
    return Principal(
        kind="user", user=user, scopes=_user_scopes(user, ALL_SCOPES), via_session=True
    )
