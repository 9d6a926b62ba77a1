"""Users: local accounts (argon2 password hashes) and people signed in through OIDC.

A person coming from an OpenID Connect provider is identified by (provider, subject) for
good: the name, email and avatar the provider reports may change and are updated in place
on the one row, never copied into a second user.
"""

from __future__ import annotations

import functools
import re

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from perffarm.server.core.errors import Conflict, Invalid, NotFound
from perffarm.server.core.principal import User, public_id
from perffarm.server.core.timeutil import now, to_db, utc
from perffarm.server.store import server_settings, sessions
from perffarm.server.store import tables as t
from perffarm.server.store.transactions import writing

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_hasher = PasswordHasher()
# Verified against when the account does not exist, so that a wrong name costs as much
# time as a wrong password and response times do not reveal which names exist.
# Made at the first sign-in, not at import: a hash takes a third of a second, which every
# server start would otherwise pay.


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("perffarm-no-such-user")


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name or ""):
        raise Invalid(
            f"invalid user name {name!r}: use letters, digits, '.', '_' and '-' "
            "(at most 100, starting with a letter or digit)"
        )
    return name


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _row_to_user(conn: sa.Connection, row: sa.Row) -> User:
    return User(
        public_id=public_id(row.id, server_settings.user_id_key(conn)),
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        email=row.email,
        avatar_url=row.avatar_url,
        provider=row.provider,
        is_admin=bool(row.is_admin),
        approved=bool(row.approved),
        disabled=bool(row.disabled),
        created_at=utc(row.created_at),
        last_sign_in=utc(row.last_sign_in),
    )


def get(conn: sa.Connection, *, name: str | None = None, user_id: int | None = None) -> User:
    query = sa.select(t.users)
    query = query.where(t.users.c.name == name) if name is not None else query
    query = query.where(t.users.c.id == user_id) if user_id is not None else query
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no user named {name!r}" if name is not None else "no such user")
    return _row_to_user(conn, row)


def exists(conn: sa.Connection, name: str) -> bool:
    return conn.execute(sa.select(t.users.c.id).where(t.users.c.name == name)).first() is not None


def create(
    conn: sa.Connection,
    name: str,
    *,
    display_name: str | None = None,
    email: str | None = None,
    password: str | None = None,
    is_admin: bool = False,
    approved: bool = True,
) -> User:
    """A local account (with a password, or without one: it then signs in only by token)."""
    check_name(name)
    try:
        with writing(conn):
            conn.execute(
                t.users.insert().values(
                    name=name,
                    display_name=display_name or name,
                    email=email,
                    password_hash=hash_password(password) if password else None,
                    is_admin=is_admin,
                    approved=approved,
                    disabled=False,
                    created_at=to_db(now()),
                )
            )
    except sa.exc.IntegrityError:
        raise Conflict(f"a user named {name!r} exists already") from None
    return get(conn, name=name)


def authenticate_password(conn: sa.Connection, name: str, password: str) -> User | None:
    """The user when the password is right and the account usable; None otherwise."""
    row = conn.execute(sa.select(t.users).where(t.users.c.name == name)).first()
    stored = row.password_hash if row is not None and row.password_hash else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or not row.password_hash:
        return None
    if _hasher.check_needs_rehash(stored):
        with writing(conn):
            conn.execute(
                t.users.update()
                .where(t.users.c.id == row.id)
                .values(password_hash=hash_password(password))
            )
    return _row_to_user(conn, row)


def set_flags(conn: sa.Connection, name: str, **values: bool) -> User:
    with writing(conn):
        done = conn.execute(t.users.update().where(t.users.c.name == name).values(**values))
        if done.rowcount == 0:
            raise NotFound(f"no user named {name!r}")
        if values.get("disabled"):
            # A disabled user's sessions end now; tokens are refused at use (see tokens.py).
            user_id = conn.execute(
                sa.select(t.users.c.id).where(t.users.c.name == name)
            ).scalar_one()
            sessions.end_all_of(conn, user_id)
    return get(conn, name=name)


def touch_sign_in(conn: sa.Connection, user_id: int) -> None:
    with writing(conn):
        conn.execute(
            t.users.update().where(t.users.c.id == user_id).values(last_sign_in=to_db(now()))
        )


def listing(conn: sa.Connection) -> list[User]:
    rows = conn.execute(sa.select(t.users).order_by(t.users.c.name)).all()
    return [_row_to_user(conn, r) for r in rows]


def _free_name(conn: sa.Connection, wanted: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "-", wanted).strip("-._")[:90] or "user"
    candidate, n = base, 1
    while exists(conn, candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def upsert_oidc(
    conn: sa.Connection,
    *,
    provider: str,
    subject: str,
    preferred_name: str,
    display_name: str,
    email: str | None,
    avatar_url: str | None,
    approved: bool,
) -> User:
    """The user for (provider, subject), created on the first sign-in, updated after.

    The user name is chosen once, at creation: it names machines and appears in URLs, so
    a changed name at the provider changes the display name, email and avatar only. What
    a provider says is kept without NUL characters (which PostgreSQL refuses).
    """
    display_name, preferred_name = (
        display_name.replace("\x00", ""),
        preferred_name.replace("\x00", ""),
    )
    email = email.replace("\x00", "") if email else email
    avatar_url = avatar_url.replace("\x00", "") if avatar_url else avatar_url
    with writing(conn):
        row = conn.execute(
            sa.select(t.users.c.id).where(
                t.users.c.provider == provider, t.users.c.subject == subject
            )
        ).first()
        if row is not None:
            conn.execute(
                t.users.update()
                .where(t.users.c.id == row.id)
                .values(
                    display_name=display_name[:200],
                    email=email,
                    avatar_url=avatar_url,
                    last_sign_in=to_db(now()),
                )
            )
            user_id = row.id
        else:
            user_id = conn.execute(
                t.users.insert().values(
                    name=_free_name(conn, preferred_name),
                    display_name=display_name[:200],
                    email=email,
                    avatar_url=avatar_url,
                    provider=provider,
                    subject=subject,
                    is_admin=False,
                    approved=approved,
                    disabled=False,
                    created_at=to_db(now()),
                    last_sign_in=to_db(now()),
                )
            ).inserted_primary_key[0]  # type: ignore[index]  # an insert always has its key
    return get(conn, user_id=user_id)
