"""The dashboard's own reads beside the runs, results and machines modules: projects and
owners with their counts, where a stored run came from, the run of a result.

Every read follows the visibility rule (``store/visibility.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from perffarm.server.core.errors import NotFound
from perffarm.server.core.timeutil import iso, utc
from perffarm.server.store import tables as t
from perffarm.server.store.visibility import visible


def projects(conn: sa.Connection, *, admin: bool, viewer: int | None) -> list[dict[str, Any]]:
    """Each project with its number of runs and its latest run's start."""
    r, m = t.runs, t.machines
    query = (
        sa.select(
            r.c.project,
            sa.func.count().label("runs"),
            sa.func.max(r.c.started_at).label("latest"),
        )
        .join(m, m.c.id == r.c.machine_id)
        .where(visible(m, admin=admin, viewer=viewer))
        .group_by(r.c.project)
        .order_by(r.c.project)
    )
    return [
        {"project": row.project, "runs": row.runs, "latest": iso(row.latest)}
        for row in conn.execute(query)
    ]


def owners(conn: sa.Connection, *, admin: bool, viewer: int | None) -> list[dict[str, Any]]:
    """Everyone who owns a machine, with how many machines and runs."""
    m, r = t.machines, t.runs
    query = (
        sa.select(
            m.c.owner,
            sa.func.count(sa.distinct(m.c.id)).label("machines"),
            sa.func.count(r.c.id).label("runs"),
            sa.func.max(r.c.started_at).label("latest"),
        )
        .outerjoin(r, r.c.machine_id == m.c.id)
        .where(visible(m, admin=admin, viewer=viewer))
        .group_by(m.c.owner)
        .order_by(m.c.owner)
    )
    return [
        {
            "owner": row.owner,
            "machines": row.machines,
            "runs": row.runs,
            "latest": iso(row.latest),
        }
        for row in conn.execute(query)
    ]


@dataclass(frozen=True)
class RunOrigin:
    """What the server knows beside a stored run document."""

    machine: str
    owner: str
    received_at: datetime | None


def run_origin(conn: sa.Connection, run_id: str) -> RunOrigin:
    """The machine and owner of a run, and when it arrived.

    No visibility check: the caller has read the run's document through
    ``runs.run_document``, which applies it; NotFound when there is no such run."""
    row = conn.execute(
        sa.select(t.runs.c.received_at, t.machines.c.name, t.machines.c.owner)
        .join(t.machines, t.machines.c.id == t.runs.c.machine_id)
        .where(t.runs.c.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"no run {run_id}")
    return RunOrigin(machine=row.name, owner=row.owner, received_at=utc(row.received_at))


def result_run(conn: sa.Connection, result_id: int, *, admin: bool, viewer: int | None) -> str:
    """The run a stored result belongs to (a timeline point links through it)."""
    query = (
        sa.select(t.results.c.run_id)
        .join(t.machines, t.machines.c.id == t.results.c.machine_id)
        .where(t.results.c.id == result_id)
        .where(visible(t.machines, admin=admin, viewer=viewer))
    )
    run_id = conn.execute(query).scalar()
    if run_id is None:
        raise NotFound(f"no result {result_id}")
    return str(run_id)
