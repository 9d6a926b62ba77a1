"""Who is calling: one type for HTTP, gRPC and the web pages alike.

A request is made by nobody (anonymous), a machine (``Bearer NAME:SECRET``), a user (by
personal or device-flow token, or by web session cookie) or the built-in admin token.
``scopes`` is what the credential allows, already capped by what the user may do.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from perffarm.model.users import UserAdminView, UserProfile, UserPublic

#: Scopes nest: ``admin`` includes ``upload``, which includes ``read``.
SCOPES = ("read", "upload", "admin")
ALL_SCOPES = frozenset(SCOPES)

PrincipalKind = Literal["anonymous", "admin-token", "machine", "user"]


@dataclass(frozen=True)
class Machine:
    """A registered machine as request handling needs it."""

    id: int
    name: str
    owner: str
    approved: bool
    #: The user account that owns the machine, when its owner is a user of this server.
    owner_user_id: int | None = None
    #: Retired: its history stays, it may not upload or act any more.
    retired: bool = False


def public_id(user_id: int, key: bytes) -> str:
    """A stable id that can be shown to anybody: a keyed hash of the user's row, with this
    server's own key, so it reveals nothing about the person, cannot be guessed from the
    row number, and differs from server to server."""
    digest = hmac.new(key, f"perffarm-user:{user_id}".encode(), hashlib.sha256).hexdigest()
    return "u-" + digest[:16]


@dataclass(frozen=True)
class User:
    id: int
    name: str
    display_name: str
    email: str | None
    avatar_url: str | None
    provider: str | None
    is_admin: bool
    approved: bool
    disabled: bool
    created_at: datetime | None = None
    last_sign_in: datetime | None = None
    #: The id shown to others (``public_id``), made by the store with the server's key.
    public_id: str = ""

    def public(self) -> UserPublic:
        return UserPublic(name=self.name, display_name=self.display_name, id=self.public_id)

    def admin_view(self) -> UserAdminView:
        return UserAdminView(
            **self.public().model_dump(),
            provider=self.provider or "local",
            is_admin=self.is_admin,
            approved=self.approved,
            disabled=self.disabled,
            created_at=self.created_at,
            last_sign_in=self.last_sign_in,
        )

    def profile(self, scopes: frozenset[str]) -> UserProfile:
        return UserProfile(
            **self.admin_view().model_dump(),
            email=self.email,
            avatar_url=self.avatar_url,
            scopes=sorted(scopes, key=SCOPES.index),
        )


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind = "anonymous"
    user: User | None = None
    machine: Machine | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    #: The personal or access token used, when a user called with one.
    token_id: str | None = None
    #: The user came by web session cookie (trusted for safe methods and sign-in forms).
    via_session: bool = False

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes and (
            self.kind == "admin-token" or (self.user is not None and self.user.is_admin)
        )

    @property
    def viewer(self) -> int | None:
        """The signed-in user's id: besides what everybody sees, a user sees the runs and
        alerts of their own machines before approval (``core.visibility``)."""
        return self.user.id if self.user is not None else None

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def describe(self) -> str:
        """Who did something, as histories record it: ``admin``, ``user:NAME``,
        ``machine:NAME``."""
        if self.kind == "admin-token" or (self.user is None and self.admin):
            return "admin"
        if self.user is not None:
            return f"user:{self.user.name}"
        if self.machine is not None:
            return f"machine:{self.machine.name}"
        return "anonymous"


ANONYMOUS = Principal()
