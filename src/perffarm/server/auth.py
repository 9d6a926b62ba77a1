"""Secrets and who is calling: a machine (``name:secret``) or an admin (the admin token).

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
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perffarm.server.db import tables as t

ADMIN_HASH_KEY = "admin_token_sha256"


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
