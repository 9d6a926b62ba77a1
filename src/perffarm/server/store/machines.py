"""Machines: registration, approval, secrets, listing, and their description kept current."""

from __future__ import annotations

import json
from typing import Literal

import sqlalchemy as sa

from perffarm.model.api import (
    FingerprintChange,
    MachineCredentials,
    MachineGrant,
    MachineInfo,
    ProbeFigures,
)
from perffarm.server.core.errors import Conflict, NotFound
from perffarm.server.core.principal import Machine
from perffarm.server.core.secrets import (
    REVOKED_PREFIX,
    hash_secret,
    new_secret,
    revoked_hash,
    same_hash,
)
from perffarm.server.core.timeutil import now, to_db, utc
from perffarm.server.store import tables as t
from perffarm.server.store.transactions import writing
from perffarm.server.store.visibility import visible

#: The columns of a machine's identity (``core.principal.Machine``).
IDENTITY = (
    t.machines.c.id,
    t.machines.c.name,
    t.machines.c.owner,
    t.machines.c.approved,
    t.machines.c.owner_user_id,
    t.machines.c.retired_at,
)


def machine_of(row: sa.Row) -> Machine:
    """The identity of a machine from a row holding the ``IDENTITY`` columns."""
    return Machine(
        id=row.id,
        name=row.name,
        owner=row.owner,
        approved=bool(row.approved),
        owner_user_id=row.owner_user_id,
        retired=row.retired_at is not None,
    )


def register(
    conn: sa.Connection, name: str, owner: str, *, owner_user_id: int | None = None
) -> MachineCredentials:
    secret = new_secret()
    try:
        with writing(conn):
            conn.execute(
                t.machines.insert().values(
                    name=name,
                    owner=owner,
                    owner_user_id=owner_user_id,
                    secret_hash=hash_secret(secret),
                    approved=False,
                    registered_at=to_db(now()),
                    metadata="{}",
                )
            )
    except sa.exc.IntegrityError:
        raise Conflict(
            f"a machine named {name!r} is already registered: choose another name"
        ) from None
    return MachineCredentials(name=name, owner=owner, approved=False, secret=secret)


def approve(conn: sa.Connection, name: str) -> None:
    with writing(conn):
        done = conn.execute(
            t.machines.update()
            .where(t.machines.c.name == name)
            .values(
                approved=True, approved_at=sa.func.coalesce(t.machines.c.approved_at, to_db(now()))
            )
        )
        if done.rowcount == 0:
            raise NotFound(f"no machine named {name!r}")


#: Why a machine's secret did not match.
SecretRefusal = Literal["unknown machine", "revoked", "wrong", "retired"]


def authenticate(conn: sa.Connection, name: str, secret: str) -> Machine | SecretRefusal:
    """The machine when the secret is its own; otherwise why not."""
    row = conn.execute(
        sa.select(*IDENTITY, t.machines.c.secret_hash).where(t.machines.c.name == name)
    ).first()
    if row is None:
        return "unknown machine"
    if not same_hash(secret, row.secret_hash):
        return "revoked" if row.secret_hash.startswith(REVOKED_PREFIX) else "wrong"
    if row.retired_at is not None:
        return "retired"
    return machine_of(row)


def identity(conn: sa.Connection, name: str) -> Machine | None:
    """A machine's id, name, owner, approval and owning user (who may act for it)."""
    row = conn.execute(sa.select(*IDENTITY).where(t.machines.c.name == name)).first()
    return machine_of(row) if row is not None else None


def identity_by_id(conn: sa.Connection, machine_id: int) -> Machine | None:
    row = conn.execute(sa.select(*IDENTITY).where(t.machines.c.id == machine_id)).first()
    return machine_of(row) if row is not None else None


def set_owner_user(conn: sa.Connection, name: str, user_id: int) -> None:
    with writing(conn):
        conn.execute(
            t.machines.update().where(t.machines.c.name == name).values(owner_user_id=user_id)
        )


def revoke_secret(conn: sa.Connection, name: str) -> None:
    """No secret of the machine works any more (until ``new_machine_secret``)."""
    with writing(conn):
        conn.execute(
            t.machines.update().where(t.machines.c.name == name).values(secret_hash=revoked_hash())
        )


def new_machine_secret(conn: sa.Connection, name: str) -> str:
    """A new secret for the machine, returned this once; the old one stops working."""
    secret = new_secret()
    with writing(conn):
        conn.execute(
            t.machines.update()
            .where(t.machines.c.name == name)
            .values(secret_hash=hash_secret(secret))
        )
    return secret


def _info(row: sa.Row) -> MachineInfo:
    return MachineInfo(
        name=row.name,
        owner=row.owner,
        approved=row.approved,
        registered_at=utc(row.registered_at),
        approved_at=utc(row.approved_at),
        last_seen=utc(row.last_seen),
        fingerprint=row.fingerprint,
        metadata=json.loads(row.metadata or "{}"),
        probe=ProbeFigures.model_validate_json(row.probe) if row.probe else None,
        retired_at=utc(row.retired_at),
    )


_INFO_COLUMNS = [
    t.machines.c.name,
    t.machines.c.owner,
    t.machines.c.approved,
    t.machines.c.registered_at,
    t.machines.c.approved_at,
    t.machines.c.last_seen,
    t.machines.c.fingerprint,
    t.machines.c.metadata,
    t.machines.c.probe,
    t.machines.c.retired_at,
]


def get(conn: sa.Connection, name: str, *, admin: bool, viewer: int | None = None) -> MachineInfo:
    """One machine with its fingerprint changes; NotFound when the caller may not see it."""
    query = sa.select(t.machines.c.id, *_INFO_COLUMNS).where(
        t.machines.c.name == name, visible(t.machines, admin=admin, viewer=viewer)
    )
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no machine named {name!r}")
    info = _info(row)
    changes = conn.execute(
        sa.select(
            t.fingerprint_changes.c.old,
            t.fingerprint_changes.c.new,
            t.fingerprint_changes.c.run_id,
            t.fingerprint_changes.c.at,
        )
        .where(t.fingerprint_changes.c.machine_id == row.id)
        .order_by(t.fingerprint_changes.c.id)
        .limit(1000)
    )
    info.fingerprint_changes = [
        FingerprintChange(old=c.old, new=c.new, run_id=c.run_id, at=utc(c.at)) for c in changes
    ]
    return info


def listing(
    conn: sa.Connection,
    *,
    admin: bool,
    owner: str | None,
    after: str | None,
    limit: int,
    viewer: int | None = None,
) -> tuple[list[MachineInfo], str | None]:
    """Machines by name: approved ones, plus the unapproved ones of ``viewer`` (a user id)
    and, for admins, all of them (the visibility rule)."""
    query = sa.select(*_INFO_COLUMNS).order_by(t.machines.c.name).limit(limit + 1)
    query = query.where(visible(t.machines, admin=admin, viewer=viewer))
    if owner:
        query = query.where(t.machines.c.owner == owner)
    if after:
        query = query.where(t.machines.c.name > after)
    rows = conn.execute(query).all()
    items = [_info(row) for row in rows[:limit]]
    return items, (items[-1].name if len(rows) > limit else None)


# -- grants: users the owner lets act on the machine's alerts and series -----------------


def grant(conn: sa.Connection, machine: Machine, user_id: int, *, by: str) -> None:
    with writing(conn):
        exists = conn.execute(
            sa.select(t.machine_grants.c.user_id).where(
                t.machine_grants.c.machine_id == machine.id,
                t.machine_grants.c.user_id == user_id,
            )
        ).first()
        if exists is None:
            conn.execute(
                t.machine_grants.insert().values(
                    machine_id=machine.id, user_id=user_id, granted_by=by, granted_at=to_db(now())
                )
            )


def withdraw(conn: sa.Connection, machine: Machine, user_id: int) -> bool:
    """End a user's grant; False when there was none."""
    with writing(conn):
        done = conn.execute(
            t.machine_grants.delete().where(
                t.machine_grants.c.machine_id == machine.id,
                t.machine_grants.c.user_id == user_id,
            )
        ).rowcount
    return bool(done)


def granted(conn: sa.Connection, machine_id: int, user_id: int) -> bool:
    g = t.machine_grants.c
    found = conn.execute(
        sa.select(g.user_id).where(g.machine_id == machine_id, g.user_id == user_id)
    ).first()
    return found is not None


def grants(conn: sa.Connection, machine: Machine) -> list[MachineGrant]:
    g, u = t.machine_grants, t.users
    rows = conn.execute(
        sa.select(u.c.name, g.c.granted_by, g.c.granted_at)
        .join(u, u.c.id == g.c.user_id)
        .where(g.c.machine_id == machine.id)
        .order_by(u.c.name)
    )
    return [
        MachineGrant(user=row.name, granted_by=row.granted_by, granted_at=utc(row.granted_at))
        for row in rows
    ]
