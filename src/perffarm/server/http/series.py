"""One series, and results listings (one user's or everybody's)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from perffarm.model.api import Baseline, Page, ResultRow, SeriesKey, SeriesPoint
from perffarm.server import permissions
from perffarm.server.core.paging import MAX_PAGE
from perffarm.server.core.principal import Principal
from perffarm.server.http.deps import connection, principal
from perffarm.server.http.routetable import rule
from perffarm.server.store import results
from perffarm.server.store import series as series_rows

router = APIRouter(tags=["results"])


@router.get("/series", response_model=Page[SeriesPoint], openapi_extra=rule(permissions.ANYONE))
def series(
    project: str,
    benchmark: str,
    metric: str,
    params: str | None = Query(None, description='JSON object, e.g. {"clients":4}; default {}'),
    branch: str | None = Query(None, description="Default: every branch."),
    machine: str | None = Query(None, description="A machine: its current fingerprint."),
    fingerprint: str | None = None,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(1000, ge=1, le=10000),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """The points of one series ordered by commit time (run start time without a commit)."""
    flt = results.SeriesFilter(
        project=project,
        benchmark=benchmark,
        metric=metric,
        params=params,
        branch=branch,
        machine=machine,
        fingerprint=fingerprint,
    )
    points, next_cursor = results.series_points(
        conn, flt, admin=who.admin, cursor=cursor, limit=limit, viewer=who.viewer
    )
    return Response(
        json.dumps({"items": points, "next_cursor": next_cursor}), media_type="application/json"
    )


@router.get("/results", response_model=Page[ResultRow], openapi_extra=rule(permissions.ANYONE))
def list_results(
    owner: str | None = Query(None, description="One user's results; default: everybody's."),
    machine: str | None = None,
    project: str | None = None,
    benchmark: str | None = None,
    metric: str | None = None,
    samples: bool = Query(False, description="Include every sample."),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """Results in the order they were stored."""
    flt = results.ResultFilter(
        owner=owner, machine=machine, project=project, benchmark=benchmark, metric=metric
    )
    items, next_cursor = results.list_results(
        conn, flt, admin=who.admin, cursor=cursor, limit=limit, samples=samples, viewer=who.viewer
    )
    page = Page[ResultRow].model_construct(items=items, next_cursor=next_cursor)
    # Serialised here in one pass, instead of FastAPI validating the page again.
    return Response(page.model_dump_json(), media_type="application/json")


@router.get("/series/keys", response_model=Page[SeriesKey], openapi_extra=rule(permissions.ANYONE))
def series_keys(
    project: str,
    benchmark: str | None = None,
    metric: str | None = None,
    branch: str | None = None,
    fingerprint: str | None = None,
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    conn: sa.Connection = Depends(connection),
) -> Page[SeriesKey]:
    """Series rows (id and key) of a project: the ids that breaks and alerts refer to."""
    items = series_rows.keys_of_project(
        conn,
        project,
        benchmark=benchmark,
        metric=metric,
        branch=branch,
        fingerprint=fingerprint,
        limit=limit,
    )
    return Page[SeriesKey](items=items)


# -- baselines for `perffarm check --against REF --server URL` --------------------------------


@router.get("/baseline", response_model=Baseline, openapi_extra=rule(permissions.ANYONE))
def baseline(
    project: str,
    branch: str | None = Query(None, description="The baseline's branch (e.g. main)."),
    commit: str | None = Query(
        None, description="The fork point (mode=at) or the contender's commit (mode=before)."
    ),
    commit_time: datetime | None = Query(None, description="That commit's time, ISO 8601."),
    mode: Literal["at", "before"] = Query(
        "at",
        description="at: runs at the commit, else the latest at or before its time; "
        "before: the runs before it (a default-branch commit's predecessors).",
    ),
    fingerprint: str | None = Query(None, description="Only runs of this machine fingerprint."),
    machine: str | None = None,
    limit: int = Query(1, ge=1, le=50),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Baseline:
    """The baseline runs for a contender: see docs/analysis.md, "Baselines that follow git"."""
    return results.baseline(
        conn,
        project=project,
        branch=branch,
        commit=commit,
        commit_time=commit_time,
        mode=mode,
        fingerprint=fingerprint,
        machine=machine,
        limit=limit,
        admin=who.admin,
    )
