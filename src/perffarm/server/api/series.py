"""One series, and results listings (one user's or everybody's)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from perffarm.model.api import Page, ResultRow, SeriesPoint
from perffarm.server import queries
from perffarm.server.api.deps import Caller, caller, connection

router = APIRouter(tags=["results"])


@router.get("/series", response_model=Page[SeriesPoint])
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
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """The points of one series ordered by commit time (run start time without a commit)."""
    flt = queries.SeriesFilter(
        project=project,
        benchmark=benchmark,
        metric=metric,
        params=params,
        branch=branch,
        machine=machine,
        fingerprint=fingerprint,
    )
    try:
        points, next_cursor = queries.series_points(
            conn,
            flt,
            admin=who.admin,
            cursor=cursor,
            limit=limit,
            viewer=who.viewer,
        )
    except queries.BadQuery as exc:
        raise HTTPException(422, str(exc)) from None
    return Response(
        json.dumps({"items": points, "next_cursor": next_cursor}), media_type="application/json"
    )


@router.get("/results", response_model=Page[ResultRow])
def results(
    owner: str | None = Query(None, description="One user's results; default: everybody's."),
    machine: str | None = None,
    project: str | None = None,
    benchmark: str | None = None,
    metric: str | None = None,
    samples: bool = Query(False, description="Include every sample."),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=queries.MAX_PAGE),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """Results in the order they were stored."""
    flt = queries.ResultFilter(
        owner=owner, machine=machine, project=project, benchmark=benchmark, metric=metric
    )
    try:
        items, next_cursor = queries.list_results(
            conn,
            flt,
            admin=who.admin,
            cursor=cursor,
            limit=limit,
            samples=samples,
            viewer=who.viewer,
        )
    except queries.BadQuery as exc:
        raise HTTPException(422, str(exc)) from None
    page = Page[ResultRow].model_construct(items=items, next_cursor=next_cursor)
    # Serialised here in one pass, instead of FastAPI validating the page again.
    return Response(page.model_dump_json(), media_type="application/json")
