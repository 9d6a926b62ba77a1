"""Machines: registration, approval, listing."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from perffarm.model.api import MachineCredentials, MachineInfo, MachineRegistration, Page
from perffarm.server import machines, users
from perffarm.server.api.deps import Caller, admin_caller, caller, connection, machine_caller
from perffarm.server.auth import REVOKED_PREFIX, hash_secret, new_secret
from perffarm.server.db import tables as t

router = APIRouter(prefix="/machines", tags=["machines"])


@router.post("", response_model=MachineCredentials, status_code=201)
def register(
    registration: MachineRegistration,
    request: Request,
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> MachineCredentials:
    """Register a machine; the answer holds its secret, which is never shown again.

    A signed-in user registers machines for themselves (the owner given is ignored unless
    the caller is an admin); anonymous registrations may not claim an existing user's name.
    """
    if request.app.state.settings.registration == "admin" and not who.admin:
        raise HTTPException(
            403, "this server registers machines for admins only: ask an admin to register it"
        )
    owner_user: users.User | None = None
    if who.user is not None and not (who.admin and registration.owner != who.user.name):
        owner_user = who.user
    elif who.admin and users.exists(conn, registration.owner):
        owner_user = users.get(conn, name=registration.owner)
    elif not who.admin and users.exists(conn, registration.owner):
        raise HTTPException(
            403,
            f"{registration.owner!r} is a user of this server: sign in as them "
            "(`perffarm login`) to register machines they own",
        )
    conn.rollback()
    owner = owner_user.name if owner_user is not None else registration.owner
    try:
        answer = machines.register(conn, registration.name, owner)
    except machines.MachineExists:
        raise HTTPException(
            409, f"a machine named {registration.name!r} is already registered: choose another name"
        ) from None
    if owner_user is not None:
        with users.writing(conn):
            conn.execute(
                t.machines.update()
                .where(t.machines.c.name == registration.name)
                .values(owner_user_id=owner_user.id)
            )
    return answer


@router.get("", response_model=Page[MachineInfo])
def list_machines(
    owner: str | None = None,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> Page[MachineInfo]:
    """Machines by name; one not approved yet is listed to its owner and to admins only."""
    items, next_cursor = machines.listing(
        conn,
        admin=who.admin,
        owner=owner,
        after=cursor,
        limit=limit,
        viewer=who.viewer,
    )
    return Page[MachineInfo](items=items, next_cursor=next_cursor)


@router.get("/me", response_model=MachineInfo)
def me(
    machine: machines.Machine = Depends(machine_caller),
    conn: sa.Connection = Depends(connection),
) -> MachineInfo:
    """The calling machine, as the server knows it (checks its credentials)."""
    return machines.get(conn, machine.name, admin=True)


@router.get("/{name}", response_model=MachineInfo)
def get_machine(
    name: str, who: Caller = Depends(caller), conn: sa.Connection = Depends(connection)
) -> MachineInfo:
    """One machine with its recorded fingerprint changes (unapproved: admins and owner)."""
    try:
        return machines.get(conn, name, admin=who.admin or _owns(conn, who, name))
    except machines.MachineNotFound:
        raise HTTPException(404, f"no machine named {name!r}") from None


@router.post("/{name}/approve", response_model=MachineInfo)
def approve(
    name: str,
    _admin: Caller = Depends(admin_caller),
    conn: sa.Connection = Depends(connection),
) -> MachineInfo:
    """Approve a machine: its runs, stored already, become visible to everybody."""
    try:
        machines.approve(conn, name)
    except machines.MachineNotFound:
        raise HTTPException(404, f"no machine named {name!r}") from None
    return machines.get(conn, name, admin=True)


def _owns(conn: sa.Connection, who: Caller, name: str) -> bool:
    if who.user is None:
        return False
    owner_id = conn.execute(
        sa.select(t.machines.c.owner_user_id).where(t.machines.c.name == name)
    ).scalar_one_or_none()
    return owner_id is not None and owner_id == who.user.id


def _owner_or_admin(conn: sa.Connection, who: Caller, name: str) -> None:
    exists = conn.execute(sa.select(t.machines.c.id).where(t.machines.c.name == name)).first()
    if who.anonymous:
        raise HTTPException(
            401,
            "this needs the machine's owner or an admin: sign in with `perffarm login`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if exists is None:
        raise HTTPException(404, f"no machine named {name!r}")
    if not (who.admin or (_owns(conn, who, name) and who.can("upload"))):
        raise HTTPException(403, f"only the owner of machine {name!r} or an admin may do this")


@router.post("/{name}/revoke", response_model=MachineInfo)
def revoke_secret(
    name: str, who: Caller = Depends(caller), conn: sa.Connection = Depends(connection)
) -> MachineInfo:
    """Revoke the machine's secret at once (owner or admin); `.../secret` makes a new one."""
    _owner_or_admin(conn, who, name)
    with users.writing(conn):
        conn.execute(
            t.machines.update()
            .where(t.machines.c.name == name)
            # Not a sha256 hex digest, so no secret can ever match it again.
            .values(secret_hash=REVOKED_PREFIX + new_secret()[:16])
        )
    return machines.get(conn, name, admin=True)


@router.post("/{name}/secret", response_model=MachineCredentials)
def rotate_secret(
    name: str, who: Caller = Depends(caller), conn: sa.Connection = Depends(connection)
) -> MachineCredentials:
    """A new secret for the machine (owner or admin), shown once; the old one stops working."""
    _owner_or_admin(conn, who, name)
    secret = new_secret()
    with users.writing(conn):
        conn.execute(
            t.machines.update()
            .where(t.machines.c.name == name)
            .values(secret_hash=hash_secret(secret))
        )
    info = machines.get(conn, name, admin=True)
    return MachineCredentials(name=name, owner=info.owner, approved=info.approved, secret=secret)
