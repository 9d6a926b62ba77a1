"""Projects: the branches an unattended agent should benchmark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from perffarm.server.api.deps import Caller, caller, connection
from perffarm.server.db.tables import machines, runs
from perffarm.server.timeutil import to_db

router = APIRouter(tags=["projects"])


class Branches(BaseModel):
    project: str
    branches: list[str]
    since: datetime


@router.get("/projects/{project}/branches", response_model=Branches)
def branches_of_interest(
    project: str,
    days: int = Query(30, ge=1, le=3650, description="Look back this many days."),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> Branches:
    """Branches with runs from approved machines in the last `days`, most recently active first.

    `perffarm agent` asks for this list and benchmarks those branches (its suite's own list
    is the fallback when the server has none).
    """
    since = datetime.now(UTC) - timedelta(days=days)
    latest = sa.func.max(runs.c.started_at).label("latest")
    rows = conn.execute(
        sa.select(runs.c.branch, latest)
        .join(machines, machines.c.id == runs.c.machine_id)
        .where(
            runs.c.project == project,
            runs.c.branch.is_not(None),
            runs.c.started_at >= to_db(since),
            machines.c.approved.is_(True),
        )
        .group_by(runs.c.branch)
        .order_by(latest.desc())
        .limit(500)
    ).all()
    if (
        not rows
        and not conn.execute(sa.select(runs.c.id).where(runs.c.project == project).limit(1)).first()
    ):
        raise HTTPException(404, f"no runs of project {project!r}")
    return Branches(project=project, branches=[row.branch for row in rows], since=since)
