"""Payloads about people: users as others, they themselves and admins see them, and their
tokens (never a token's secret, except once in ``NewToken``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from perffarm.model.text import Text

Scope = Literal["read", "upload", "admin"]
TokenKind = Literal["personal", "access", "refresh"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserPublic(_Payload):
    """What anybody may see of a user: never the email."""

    name: str
    display_name: str
    id: str = Field(description="A stable public id that reveals nothing about the person.")


class UserAdminView(UserPublic):
    """What an admin sees in a listing: the account's state, still without the email."""

    provider: str = Field(description="The sign-in provider, or 'local'.")
    is_admin: bool
    approved: bool
    disabled: bool
    created_at: datetime | None
    last_sign_in: datetime | None


class UserProfile(UserAdminView):
    """What the user sees of themselves (the only place the email is shown)."""

    email: str | None
    avatar_url: str | None
    scopes: list[Scope] = Field(default_factory=list, description="What this credential may do.")


class UserList(_Payload):
    items: list[UserAdminView]


class TokenInfo(_Payload):
    id: str = Field(description="Public: `perffarm token revoke ID` takes it.")
    kind: TokenKind
    name: str
    scopes: list[Scope]
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewToken(TokenInfo):
    token: str = Field(description="The token itself, shown this once; only its hash is kept.")


class TokenList(_Payload):
    items: list[TokenInfo]


class TokenRequest(_Payload):
    scope: Text = Field("read", description="read, upload or admin (each includes the ones before)")
    expires: Text | None = Field(
        None,
        description="e.g. 90d, 12h, 2w, or 'never'. Omitted: 90 days, or until the "
        "credential that makes the token ends, when that is sooner. A token never outlives "
        "the credential that made it.",
    )
    name: Text = Field("", max_length=200, description="What the token is for.")


class NewUser(_Payload):
    name: Text = Field(min_length=1, max_length=100)
    display_name: Text | None = Field(None, max_length=200)
    email: Text | None = Field(None, max_length=320)
    password: Text | None = Field(None, min_length=8, max_length=1000)
    is_admin: bool = False
