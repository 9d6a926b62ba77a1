"""Projects: the branches an unattended agent should benchmark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from perffarm.server import permissions
from perffarm.server.core.principal import Principal
from perffarm.server.http.deps import connection, principal
from perffarm.server.http.routetable import rule
from perffarm.server.store import results

router = APIRouter(tags=["projects"])


class Branches(BaseModel):
    project: str
    branches: list[str]
    since: datetime


@router.get(
    "/projects/{project}/branches", response_model=Branches, openapi_extra=rule(permissions.ANYONE)
)
def branches_of_interest(
    project: str,
    days: int = Query(30, ge=1, le=3650, description="Look back this many days."),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Branches:
    """Branches with runs from approved machines in the last `days`, most recently active first.

    `perffarm agent` asks for this list and benchmarks those branches (its suite's own list
    is the fallback when the server has none).
    """
    since = datetime.now(UTC) - timedelta(days=days)
    return Branches(
        project=project, branches=results.active_branches(conn, project, since), since=since
    )
