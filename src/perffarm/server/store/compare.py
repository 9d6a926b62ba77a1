"""The compare page's reads: a run's header and its results as the rows a comparison uses.

Parsing a whole stored document (attachments and all) costs more than comparing; the
results rows hold everything a comparison needs: key, unit, direction, samples, summary.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa

from perffarm.server.core.errors import NotFound
from perffarm.server.core.timeutil import iso
from perffarm.server.core.visibility import can_see
from perffarm.server.store import tables as t

#: The columns of ``result_rows``, in order.
RESULT_COLUMNS = (
    "benchmark",
    "params",
    "metric",
    "unit",
    "direction",
    "samples",
    "n",
    "mean",
    "median",
    "stdev",
    "min",
    "max",
)


def run_head(
    conn: sa.Connection, run_id: str, *, admin: bool, viewer: int | None
) -> dict[str, Any]:
    """A run's id, project, machine, branch, commit, tag and start; NotFound when hidden."""
    r, m = t.runs, t.machines
    head = conn.execute(
        sa.select(
            r.c.id,
            r.c.project,
            r.c.branch,
            r.c.commit,
            r.c.tag,
            r.c.started_at,
            m.c.name.label("machine"),
            m.c.approved,
            m.c.owner_user_id,
        )
        .join(m, m.c.id == r.c.machine_id)
        .where(r.c.id == run_id)
    ).first()
    if head is None or not can_see(head.approved, head.owner_user_id, admin=admin, viewer=viewer):
        raise NotFound(f"no run {run_id}")
    return {
        "id": head.id,
        "project": head.project,
        "machine": head.machine,
        "branch": head.branch,
        "commit": head.commit,
        "tag": head.tag,
        "started_at": iso(head.started_at),
    }


def result_rows(conn: sa.Connection, run_id: str) -> list[tuple[Any, ...]]:
    """Every result of a run in stored order, as the driver's tuples of ``RESULT_COLUMNS``
    (params and samples as their stored JSON text).

    No visibility check: ``run_head`` is the caller's. Straight from the driver's cursor:
    5,000 results through SQLAlchemy's rows would cost as much as the comparison."""
    res = t.results
    rows = conn.execute(
        sa.select(*(res.c[name] for name in RESULT_COLUMNS))
        .where(res.c.run_id == run_id)
        .order_by(res.c.id)
    )
    # A DB-API cursor's fetchall gives a list; the stubs say a sequence.
    return cast(list[tuple[Any, ...]], rows.cursor.fetchall())
