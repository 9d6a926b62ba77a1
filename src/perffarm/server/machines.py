"""Machines: registration, approval, authentication, and their description kept current."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from perffarm.model.api import FingerprintChange, MachineCredentials, MachineInfo, ProbeFigures
from perffarm.server.auth import hash_secret, new_secret, same_hash
from perffarm.server.db import tables as t
from perffarm.server.timeutil import now, to_db, utc


class MachineExists(Exception):
    pass


class MachineNotFound(Exception):
    pass


@dataclass(frozen=True)
class Machine:
    """The columns of a machine that request handling needs."""

    id: int
    name: str
    owner: str
    approved: bool


def register(conn: sa.Connection, name: str, owner: str) -> MachineCredentials:
    secret = new_secret()
    try:
        with conn.begin():
            conn.execute(
                t.machines.insert().values(
                    name=name,
                    owner=owner,
                    secret_hash=hash_secret(secret),
                    approved=False,
                    registered_at=to_db(now()),
                    metadata="{}",
                )
            )
    except sa.exc.IntegrityError:
        raise MachineExists(name) from None
    return MachineCredentials(name=name, owner=owner, approved=False, secret=secret)


def approve(conn: sa.Connection, name: str) -> None:
    with conn.begin():
        done = conn.execute(
            t.machines.update()
            .where(t.machines.c.name == name)
            .values(
                approved=True, approved_at=sa.func.coalesce(t.machines.c.approved_at, to_db(now()))
            )
        )
        if done.rowcount == 0:
            raise MachineNotFound(name)


def authenticate(conn: sa.Connection, name: str, secret: str) -> Machine | None:
    row = conn.execute(
        sa.select(
            t.machines.c.id,
            t.machines.c.name,
            t.machines.c.owner,
            t.machines.c.approved,
            t.machines.c.secret_hash,
        ).where(t.machines.c.name == name)
    ).first()
    if row is None or not same_hash(secret, row.secret_hash):
        return None
    return Machine(id=row.id, name=row.name, owner=row.owner, approved=row.approved)


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
]


def get(conn: sa.Connection, name: str, *, admin: bool) -> MachineInfo:
    row = conn.execute(
        sa.select(t.machines.c.id, *_INFO_COLUMNS).where(t.machines.c.name == name)
    ).first()
    if row is None or (not row.approved and not admin):
        raise MachineNotFound(name)
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


def owner_row(conn: sa.Connection, name: str) -> sa.Row | None:
    """A machine's id, name, owner, approval and owning user: who may upload as it."""
    m = t.machines
    return conn.execute(
        sa.select(m.c.id, m.c.name, m.c.owner, m.c.approved, m.c.owner_user_id).where(
            m.c.name == name
        )
    ).first()


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
    and, for admins, all of them (the rule of ``queries.visible``)."""
    from perffarm.server.queries import visible

    query = sa.select(*_INFO_COLUMNS).order_by(t.machines.c.name).limit(limit + 1)
    query = query.where(visible(t.machines, admin=admin, viewer=viewer))
    if owner:
        query = query.where(t.machines.c.owner == owner)
    if after:
        query = query.where(t.machines.c.name > after)
    rows = conn.execute(query).all()
    items = [_info(row) for row in rows[:limit]]
    return items, (items[-1].name if len(rows) > limit else None)
