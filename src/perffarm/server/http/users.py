"""Users and their tokens: who am I, personal tokens, and the admin's user management."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi import APIRouter, Depends

from perffarm.model.users import (
    NewToken,
    NewUser,
    TokenInfo,
    TokenList,
    TokenRequest,
    UserAdminView,
    UserList,
    UserProfile,
)
from perffarm.server import permissions
from perffarm.server.core.principal import Principal
from perffarm.server.core.timeutil import now
from perffarm.server.http.deps import admin_principal, connection, user_principal
from perffarm.server.store import lifecycle, tokens, users
from perffarm.server.store.transactions import writing

router = APIRouter(tags=["users"])


@router.get("/me", response_model=UserProfile)
def me(who: Principal = Depends(user_principal)) -> UserProfile:
    """The signed-in user's own profile (the only place an email is shown) and scopes."""
    assert who.user is not None
    return who.user.profile(who.scopes)


@router.get("/tokens", response_model=TokenList)
def list_tokens(
    who: Principal = Depends(user_principal), conn: sa.Connection = Depends(connection)
) -> TokenList:
    """The caller's active tokens (never their secrets)."""
    assert who.user is not None
    return TokenList(items=[i.payload() for i in tokens.listing(conn, who.user.id)])


@router.post("/tokens", status_code=201, response_model=NewToken)
def create_token(
    body: TokenRequest,
    who: Principal = Depends(user_principal),
    conn: sa.Connection = Depends(connection),
) -> NewToken:
    """A personal token, shown this once; only its hash is kept."""
    assert who.user is not None
    scopes = tokens.parse_scopes(body.scope)
    parent = tokens.get(conn, who.token_id) if who.token_id else None
    ends = tokens.horizon(conn, parent) if parent else None
    moment = now()
    if body.expires is None:
        default = tokens.DEFAULT_PERSONAL_LIFETIME
        lifetime: timedelta | None = default if ends is None else min(default, ends - moment)
    else:
        lifetime = tokens.parse_lifetime(body.expires)
    permissions.may_create_token(
        who,
        scopes,
        body.scope,
        expires_at=moment + lifetime if lifetime else None,
        credential_ends=ends,
    )
    info, secret = tokens.issue(
        conn,
        who.user.id,
        kind="personal",
        scopes=scopes,
        lifetime=lifetime,
        name=body.name,
        parent_id=who.token_id,
        created=moment,
    )
    return NewToken(**info.payload().model_dump(), token=secret)


@router.delete("/tokens/{token_id}", response_model=TokenInfo)
def revoke_token(
    token_id: str,
    who: Principal = Depends(user_principal),
    conn: sa.Connection = Depends(connection),
) -> TokenInfo:
    """Revoke one of your tokens (an admin may revoke anybody's)."""
    assert who.user is not None
    return tokens.revoke(conn, token_id, user_id=None if who.admin else who.user.id).payload()


@router.get("/users", response_model=UserList)
def list_users(
    _admin: Principal = Depends(admin_principal), conn: sa.Connection = Depends(connection)
) -> UserList:
    """Every user (admins only); emails are not listed."""
    return UserList(items=[u.admin_view() for u in users.listing(conn)])


@router.post("/users", status_code=201, response_model=UserAdminView)
def add_user(
    body: NewUser,
    _admin: Principal = Depends(admin_principal),
    conn: sa.Connection = Depends(connection),
) -> UserAdminView:
    """Create a local account (admins only)."""
    user = users.create(
        conn,
        body.name,
        display_name=body.display_name,
        email=body.email,
        password=body.password,
        is_admin=body.is_admin,
    )
    return user.admin_view()


@router.post("/users/{name}/disable", response_model=UserAdminView)
def disable_user(
    name: str,
    admin: Principal = Depends(admin_principal),
    conn: sa.Connection = Depends(connection),
) -> UserAdminView:
    """Disable a user: sessions end, tokens and owned machines' secrets are refused.
    Recorded in the audit trail."""
    view = users.set_flags(conn, name, disabled=True).admin_view()
    with writing(conn):
        lifecycle.record(conn, actor=admin.describe(), action="disable user", target=name, at=now())
    return view


@router.post("/users/{name}/enable", response_model=UserAdminView)
def enable_user(
    name: str,
    _admin: Principal = Depends(admin_principal),
    conn: sa.Connection = Depends(connection),
) -> UserAdminView:
    """Enable a disabled user again."""
    return users.set_flags(conn, name, disabled=False).admin_view()


@router.post("/users/{name}/approve", response_model=UserAdminView)
def approve_user(
    name: str,
    _admin: Principal = Depends(admin_principal),
    conn: sa.Connection = Depends(connection),
) -> UserAdminView:
    """Approve a user who signed in through a provider (with --user-approval admin)."""
    return users.set_flags(conn, name, approved=True).admin_view()
