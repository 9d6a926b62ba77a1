"""Machines: registration, approval, listing."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from perffarm.model.api import MachineCredentials, MachineInfo, MachineRegistration, Page
from perffarm.server import machines
from perffarm.server.api.deps import Caller, admin_caller, caller, connection, machine_caller

router = APIRouter(prefix="/machines", tags=["machines"])


@router.post("", response_model=MachineCredentials, status_code=201)
def register(
    registration: MachineRegistration,
    request: Request,
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> MachineCredentials:
    """Register a machine; the answer holds its secret, which is never shown again."""
    if request.app.state.settings.registration == "admin" and not who.admin:
        raise HTTPException(
            403, "this server registers machines for admins only: ask an admin to register it"
        )
    try:
        return machines.register(conn, registration.name, registration.owner)
    except machines.MachineExists:
        raise HTTPException(
            409, f"a machine named {registration.name!r} is already registered: choose another name"
        ) from None


@router.get("", response_model=Page[MachineInfo])
def list_machines(
    owner: str | None = None,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> Page[MachineInfo]:
    """Machines by name; machines not approved yet are listed to admins only."""
    items, next_cursor = machines.listing(
        conn, admin=who.admin, owner=owner, after=cursor, limit=limit
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
    """One machine with its recorded fingerprint changes."""
    try:
        return machines.get(conn, name, admin=who.admin)
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
