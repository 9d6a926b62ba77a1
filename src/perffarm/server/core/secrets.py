"""Secrets: 256-bit random strings, stored only as their SHA-256.

A slow password hash (argon2) protects low-entropy human passwords against guessing;
against a 256-bit random secret guessing is hopeless anyway, so a plain SHA-256 gives the
same protection if the database leaks and keeps each request cheap.

Credentials travel as ``Authorization: Bearer <token>``: a machine's token is
``<machine name>:<secret>`` (machine names cannot contain ``:``), a user's token is
``pft_...``/``pfa_...``, the admin's token is the bare admin token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

#: A stored hash that starts with this was revoked: no secret hashes to it.
REVOKED_PREFIX = "revoked:"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_hash(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def revoked_hash() -> str:
    """A value for a hash column that no secret can ever match again."""
    return REVOKED_PREFIX + new_secret()[:16]


@dataclass(frozen=True)
class Bearer:
    """An ``Authorization: Bearer`` credential: a machine's ``NAME:SECRET`` or a token."""

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
