"""Users and their tokens: who am I, personal tokens, and the admin's user management."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from perffarm.server import tokens, users
from perffarm.server.api.deps import Caller, admin_caller, connection, user_caller

router = APIRouter(tags=["users"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(_Body):
    scope: str = Field("read", description="read, upload or admin (each includes the ones before)")
    expires: str | None = Field("90d", description="e.g. 90d, 12h, 2w; null or 'never': no expiry")
    name: str = Field("", max_length=200, description="What the token is for.")


class NewUser(_Body):
    name: str = Field(min_length=1, max_length=100)
    display_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)
    password: str | None = Field(None, min_length=8, max_length=1000)
    is_admin: bool = False


@router.get("/me")
def me(who: Caller = Depends(user_caller)) -> dict:
    """The signed-in user's own profile (the only place an email is shown) and scopes."""
    assert who.user is not None
    return {**who.user.profile(), "scopes": sorted(who.scopes)}


@router.get("/tokens")
def list_tokens(
    who: Caller = Depends(user_caller), conn: sa.Connection = Depends(connection)
) -> dict:
    """The caller's active tokens (never their secrets)."""
    assert who.user is not None
    return {"items": [i.to_json() for i in tokens.listing(conn, who.user.id)]}


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenRequest,
    who: Caller = Depends(user_caller),
    conn: sa.Connection = Depends(connection),
) -> dict:
    """A personal token, shown this once; only its hash is kept."""
    assert who.user is not None
    try:
        scopes = tokens.parse_scopes(body.scope)
        lifetime = tokens.parse_lifetime(body.expires)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if not scopes <= who.scopes:
        # A token never grants more than the credential that made it.
        raise HTTPException(
            403,
            f"you may not create a token with scope {body.scope!r}: "
            f"your credential has {tokens.scope_text(who.scopes) or 'no scopes'}",
        )
    info, secret = tokens.issue(
        conn, who.user.id, kind="personal", scopes=scopes, lifetime=lifetime, name=body.name
    )
    return {**info.to_json(), "token": secret}


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: str,
    who: Caller = Depends(user_caller),
    conn: sa.Connection = Depends(connection),
) -> dict:
    """Revoke one of your tokens (an admin may revoke anybody's)."""
    assert who.user is not None
    try:
        info = tokens.revoke(conn, token_id, user_id=None if who.admin else who.user.id)
    except tokens.TokenRefused as exc:
        raise HTTPException(404, str(exc)) from None
    return info.to_json()


@router.get("/users")
def list_users(
    _admin: Caller = Depends(admin_caller), conn: sa.Connection = Depends(connection)
) -> dict:
    """Every user (admins only); emails are not listed."""
    return {"items": [u.admin_view() for u in users.listing(conn)]}


@router.post("/users", status_code=201)
def add_user(
    body: NewUser, _admin: Caller = Depends(admin_caller), conn: sa.Connection = Depends(connection)
) -> dict:
    """Create a local account (admins only)."""
    try:
        user = users.create(
            conn,
            body.name,
            display_name=body.display_name,
            email=body.email,
            password=body.password,
            is_admin=body.is_admin,
        )
    except users.UserExists as exc:
        raise HTTPException(409, str(exc)) from None
    except users.UserError as exc:
        raise HTTPException(422, str(exc)) from None
    return user.admin_view()


def _flag(conn: sa.Connection, name: str, **values: bool) -> dict:
    try:
        return users.set_flags(conn, name, **values).admin_view()
    except users.UserNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/users/{name}/disable")
def disable_user(
    name: str, _admin: Caller = Depends(admin_caller), conn: sa.Connection = Depends(connection)
) -> dict:
    """Disable a user: sessions end, tokens and owned machines' secrets are refused."""
    return _flag(conn, name, disabled=True)


@router.post("/users/{name}/enable")
def enable_user(
    name: str, _admin: Caller = Depends(admin_caller), conn: sa.Connection = Depends(connection)
) -> dict:
    """Enable a disabled user again."""
    return _flag(conn, name, disabled=False)


@router.post("/users/{name}/approve")
def approve_user(
    name: str, _admin: Caller = Depends(admin_caller), conn: sa.Connection = Depends(connection)
) -> dict:
    """Approve a user who signed in through a provider (with --user-approval admin)."""
    return _flag(conn, name, approved=True)
