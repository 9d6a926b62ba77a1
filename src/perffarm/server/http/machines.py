"""Machines: registration, approval, listing, secrets."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request

from perffarm.model.api import (
    GrantRequest,
    MachineCredentials,
    MachineGrant,
    MachineInfo,
    MachineRegistration,
    Page,
)
from perffarm.server import permissions
from perffarm.server.core.errors import NotFound
from perffarm.server.core.principal import Machine, Principal, User
from perffarm.server.http.deps import (
    acting_principal,
    admin_principal,
    connection,
    principal,
    upload_machine,
)
from perffarm.server.http.routetable import rule
from perffarm.server.store import machines, users

router = APIRouter(prefix="/machines", tags=["machines"])


def registrar(request: Request, who: Principal = Depends(principal)) -> Principal:
    """Who may register machines on this server (checked before the body is read)."""
    permissions.may_register_machines(who, registration=request.app.state.settings.registration)
    return who


@router.post(
    "",
    response_model=MachineCredentials,
    status_code=201,
    openapi_extra=rule(permissions.REGISTRAR),
)
def register(
    registration: MachineRegistration,
    request: Request,
    who: Principal = Depends(registrar),
    conn: sa.Connection = Depends(connection),
) -> MachineCredentials:
    """Register a machine; the answer holds its secret, which is never shown again.

    A signed-in user registers machines for themselves (the owner given is ignored unless
    the caller is an admin); anonymous registrations may not claim an existing user's name.
    """
    owner_is_user = users.exists(conn, registration.owner)
    permissions.may_register_machine(who, owner=registration.owner, owner_is_user=owner_is_user)
    owner_user: User | None = None
    if who.user is not None and not (who.admin and registration.owner != who.user.name):
        owner_user = who.user
    elif who.admin and owner_is_user:
        owner_user = users.get(conn, name=registration.owner)
    owner = owner_user.name if owner_user is not None else registration.owner
    return machines.register(
        conn,
        registration.name,
        owner,
        owner_user_id=owner_user.id if owner_user is not None else None,
    )


@router.get("", response_model=Page[MachineInfo], openapi_extra=rule(permissions.ANYONE))
def list_machines(
    owner: str | None = None,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Page[MachineInfo]:
    """Machines by name; one not approved yet is listed to its owner and to admins only."""
    items, next_cursor = machines.listing(
        conn, admin=who.admin, owner=owner, after=cursor, limit=limit, viewer=who.viewer
    )
    return Page[MachineInfo](items=items, next_cursor=next_cursor)


@router.get("/me", response_model=MachineInfo, openapi_extra=rule(permissions.UPLOADER))
def me(
    machine: Machine = Depends(upload_machine),
    conn: sa.Connection = Depends(connection),
) -> MachineInfo:
    """The calling machine, as the server knows it (checks its credentials)."""
    return machines.get(conn, machine.name, admin=True)


@router.get("/{name}", response_model=MachineInfo, openapi_extra=rule(permissions.ANYONE))
def get_machine(
    name: str, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> MachineInfo:
    """One machine with its recorded fingerprint changes (unapproved: admins and owner)."""
    return machines.get(conn, name, admin=who.admin, viewer=who.viewer)


@router.post("/{name}/approve", response_model=MachineInfo, openapi_extra=rule(permissions.ADMIN))
def approve(
    name: str,
    _admin: Principal = Depends(admin_principal),
    conn: sa.Connection = Depends(connection),
) -> MachineInfo:
    """Approve a machine: its runs, stored already, become visible to everybody."""
    machines.approve(conn, name)
    return machines.get(conn, name, admin=True)


def _managed(conn: sa.Connection, who: Principal, name: str) -> Machine:
    return permissions.may_manage_machine(who, name, machines.identity(conn, name))


@router.post(
    "/{name}/revoke", response_model=MachineInfo, openapi_extra=rule(permissions.MACHINE_MANAGER)
)
def revoke_secret(
    name: str, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> MachineInfo:
    """Revoke the machine's secret at once (owner or admin); `.../secret` makes a new one."""
    _managed(conn, who, name)
    machines.revoke_secret(conn, name)
    return machines.get(conn, name, admin=True)


@router.post(
    "/{name}/secret",
    response_model=MachineCredentials,
    openapi_extra=rule(permissions.MACHINE_MANAGER),
)
def rotate_secret(
    name: str, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> MachineCredentials:
    """A new secret for the machine (owner or admin), shown once; the old one stops working."""
    found = _managed(conn, who, name)
    secret = machines.new_machine_secret(conn, name)
    return MachineCredentials(name=name, owner=found.owner, approved=found.approved, secret=secret)


@router.get(
    "/{name}/grants",
    response_model=Page[MachineGrant],
    openapi_extra=rule(permissions.MACHINE_MANAGER),
)
def list_grants(
    name: str, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> Page[MachineGrant]:
    """The users the owner lets act on the machine's alerts and series (owner or admin)."""
    return Page[MachineGrant](items=machines.grants(conn, _managed(conn, who, name)))


@router.post(
    "/{name}/grants",
    response_model=Page[MachineGrant],
    status_code=201,
    openapi_extra=rule(permissions.MACHINE_MANAGER),
)
def add_grant(
    body: GrantRequest,
    name: str,
    who: Principal = Depends(acting_principal),
    conn: sa.Connection = Depends(connection),
) -> Page[MachineGrant]:
    """Let a user act on the machine's alerts and series (owner or admin)."""
    machine = _managed(conn, who, name)
    user = users.get(conn, name=body.user)
    machines.grant(conn, machine, user.id, by=who.describe())
    return Page[MachineGrant](items=machines.grants(conn, machine))


@router.delete(
    "/{name}/grants/{user}",
    response_model=Page[MachineGrant],
    openapi_extra=rule(permissions.MACHINE_MANAGER),
)
def remove_grant(
    name: str,
    user: str,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Page[MachineGrant]:
    """End a user's right to act on the machine's alerts and series (owner or admin)."""
    machine = _managed(conn, who, name)
    found = users.get(conn, name=user)
    if not machines.withdraw(conn, machine, found.id):
        raise NotFound(f"user {user!r} has no grant on machine {name!r}")
    return Page[MachineGrant](items=machines.grants(conn, machine))
