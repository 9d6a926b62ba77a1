"""Web sessions (a cookie's hash and its user) and the one-use states of OIDC sign-ins."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa

from perffarm.server.core.secrets import hash_secret
from perffarm.server.core.timeutil import now, to_db, utc
from perffarm.server.store import tables as t
from perffarm.server.store.transactions import writing

SESSION_LIFETIME = timedelta(days=14)
STATE_LIFETIME = timedelta(minutes=10)
_MAX_COOKIE = 200


def start(conn: sa.Connection, user_id: int) -> str:
    """A new session for the user: the cookie value (only its hash is kept)."""
    value = secrets.token_urlsafe(32)
    with writing(conn):
        conn.execute(
            t.web_sessions.insert().values(
                id_hash=hash_secret(value),
                user_id=user_id,
                created_at=to_db(now()),
                expires_at=to_db(now() + SESSION_LIFETIME),
            )
        )
        conn.execute(t.web_sessions.delete().where(t.web_sessions.c.expires_at < to_db(now())))
    return value


def user_of(conn: sa.Connection, cookie: str | None) -> int | None:
    """The user id of a live session; None when the cookie names no session or an old one."""
    if not cookie or len(cookie) > _MAX_COOKIE:
        return None
    row = conn.execute(
        sa.select(t.web_sessions.c.user_id, t.web_sessions.c.expires_at).where(
            t.web_sessions.c.id_hash == hash_secret(cookie)
        )
    ).first()
    if row is None or utc(row.expires_at) <= now():
        return None
    return int(row.user_id)


def end(conn: sa.Connection, cookie: str | None) -> None:
    with writing(conn):
        conn.execute(
            t.web_sessions.delete().where(t.web_sessions.c.id_hash == hash_secret(cookie or ""))
        )


def end_all_of(conn: sa.Connection, user_id: int) -> None:
    """Every session of the user ends now (the caller commits)."""
    conn.execute(t.web_sessions.delete().where(t.web_sessions.c.user_id == user_id))


def remember_state(
    conn: sa.Connection, *, state: str, provider: str, nonce: str, verifier: str, next_url: str
) -> None:
    with writing(conn):
        conn.execute(
            t.sign_in_states.delete().where(
                t.sign_in_states.c.created_at < to_db(now() - STATE_LIFETIME)
            )
        )
        conn.execute(
            t.sign_in_states.insert().values(
                state=state,
                provider=provider,
                nonce=nonce,
                code_verifier=verifier,
                next_url=next_url,
                created_at=to_db(now()),
            )
        )


def take_state(conn: sa.Connection, state: str, provider: str) -> sa.Row | None:
    """The sign-in state, used once whatever happens next (a replayed callback finds
    nothing); None when unknown, of another provider, or too old."""
    with writing(conn):
        row = conn.execute(
            sa.select(t.sign_in_states).where(t.sign_in_states.c.state == state)
        ).first()
        conn.execute(t.sign_in_states.delete().where(t.sign_in_states.c.state == state))
    if row is None or row.provider != provider:
        return None
    if utc(row.created_at) < now() - STATE_LIFETIME:
        return None
    return row
