"""Alerts, alert groups, "new normal" breaks, alert settings, and baselines for `check`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from perffarm.server import alerts, queries
from perffarm.server.api.deps import Caller, caller, connection
from perffarm.server.db import tables as t
from perffarm.server.detection import TrackKey
from perffarm.server.timeutil import iso, to_db

router = APIRouter(tags=["alerts"])


def _id() -> Any:
    # A fresh Path per route: FastAPI binds a shared parameter object to its first name.
    return Path(..., ge=1, le=2**31 - 1)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StateChange(_Body):
    state: Literal["new", "acknowledged", "invalid", "fixed"]
    note: str | None = Field(None, max_length=2000)


class BreakRequest(_Body):
    run_id: str = Field(
        ..., min_length=1, max_length=36, description="The first run of the new normal."
    )
    note: str | None = Field(None, max_length=2000)


class SettingsChange(_Body):
    alert_webhook_url: str | None = Field(None, max_length=2000)
    alert_p_value: str | float | None = None
    alert_min_magnitude: str | float | None = Field(None, description="e.g. 2% or 0.02")


def _who(who: Caller) -> str:
    """Who changed something: the admin, or a machine (users come with issue 4)."""
    if who.admin:
        return "admin"
    user = getattr(who, "user", None)
    if user is not None:
        return f"user:{user.name}"
    if who.machine is not None:
        return f"machine:{who.machine.name}"
    raise HTTPException(
        401,
        "this needs the admin token or a machine's credentials (Authorization: Bearer ...)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _bad(exc: Exception) -> HTTPException:
    status = 404 if isinstance(exc, queries.NotFound) else 422
    return HTTPException(status, str(exc.args[0]) if exc.args else str(exc))


@router.get("/alerts")
def list_alerts(
    project: str | None = None,
    state: str | None = Query(None, description="new, acknowledged, invalid or fixed"),
    branch: str | None = None,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=queries.MAX_PAGE),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> dict[str, Any]:
    """Alerts, newest first: one per change point that matters (p and magnitude limits)."""
    try:
        items, next_cursor = alerts.list_alerts(
            conn,
            project=project,
            state=state,
            branch=branch,
            admin=who.admin,
            cursor=cursor,
            limit=limit,
            viewer=who.viewer,
        )
    except queries.BadQuery as exc:
        raise _bad(exc) from None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/alerts/status")
def detection_status(request: Request) -> dict[str, Any]:
    """The background detector of this server process: jobs pending, tracks analysed."""
    return request.app.state.detection.status()


@router.get("/alerts/{alert_id}")
def get_alert(
    alert_id: int = _id(),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> dict[str, Any]:
    """One alert with its history of states (who, when, note)."""
    try:
        return alerts.get_alert(conn, alert_id, admin=who.admin, viewer=who.viewer)
    except queries.NotFound as exc:
        raise _bad(exc) from None


@router.post("/alerts/{alert_id}/state")
def change_state(
    body: StateChange,
    alert_id: int = _id(),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> dict[str, Any]:
    """Acknowledge an alert, mark it invalid or fixed (or new again): admin or a machine."""
    by = _who(who)
    if who.machine is not None and not who.machine.approved:
        raise HTTPException(403, f"machine {who.machine.name!r} is not approved yet")
    try:
        return alerts.set_state(conn, alert_id, body.state, by=by, note=body.note, admin=who.admin)
    except (queries.NotFound, queries.BadQuery) as exc:
        raise _bad(exc) from None


@router.get("/alert-groups")
def list_groups(
    project: str | None = None,
    branch: str | None = None,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=200),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> dict[str, Any]:
    """Alerts grouped by (project, branch, commit range), newest group first."""
    try:
        items, next_cursor = alerts.list_groups(
            conn,
            project=project,
            branch=branch,
            admin=who.admin,
            cursor=cursor,
            limit=limit,
            viewer=who.viewer,
        )
    except queries.BadQuery as exc:
        raise _bad(exc) from None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/alert-groups/{group_id}")
def get_group(
    group_id: int = _id(),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> dict[str, Any]:
    try:
        return alerts.get_group(conn, group_id, admin=who.admin, viewer=who.viewer)
    except queries.NotFound as exc:
        raise _bad(exc) from None


@router.get("/series/keys")
def series_keys(
    project: str,
    benchmark: str | None = None,
    metric: str | None = None,
    branch: str | None = None,
    fingerprint: str | None = None,
    limit: int = Query(100, ge=1, le=queries.MAX_PAGE),
    conn: sa.Connection = Depends(connection),
) -> dict[str, Any]:
    """Series rows (id and key) of a project: the ids that breaks and alerts refer to."""
    s = t.series
    query = sa.select(s.c.id, s.c.benchmark, s.c.params, s.c.metric, s.c.fingerprint, s.c.branch)
    query = query.where(s.c.project == project)
    for column, value in (
        (s.c.benchmark, benchmark),
        (s.c.metric, metric),
        (s.c.branch, branch),
        (s.c.fingerprint, fingerprint),
    ):
        if value is not None:
            query = query.where(column == value)
    rows = conn.execute(query.order_by(s.c.id).limit(limit)).all()
    return {
        "items": [
            {
                "id": row.id,
                "project": project,
                "benchmark": row.benchmark,
                "params": json.loads(row.params),
                "metric": row.metric,
                "fingerprint": row.fingerprint or None,
                "branch": row.branch or None,
            }
            for row in rows
        ]
    }


@router.get("/series/{series_id}/breaks")
def list_breaks(
    series_id: int = _id(), conn: sa.Connection = Depends(connection)
) -> dict[str, Any]:
    """The "new normal starts here" marks of one series."""
    return {"items": alerts.list_breaks(conn, series_id)}


@router.post("/series/{series_id}/breaks", status_code=201)
def add_break(
    body: BreakRequest,
    request: Request,
    series_id: int = _id(),
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> dict[str, Any]:
    """Mark "a new normal starts here" at a run's point: no alert across it from now on.

    Admin, or a machine of the same owner as the machine that made the run.
    """
    by = _who(who)
    try:
        target = alerts.break_target(conn, series_id, body.run_id, admin=who.admin)
    except (queries.NotFound, queries.BadQuery) as exc:
        raise _bad(exc) from None
    conn.rollback()
    if not who.admin:
        user = getattr(who, "user", None)
        if user is not None:
            owner_ok = user.name == target.machine_owner
        else:
            assert who.machine is not None
            owner_ok = who.machine.approved and who.machine.owner == target.machine_owner
        if not owner_ok:
            raise HTTPException(
                403,
                "only the admin or a machine of the same owner "
                f"({target.machine_owner!r}) may mark a new normal in this series",
            )
    answer = alerts.add_break(conn, target, by=by, note=body.note)
    worker = request.app.state.detection
    row = conn.execute(
        sa.select(
            t.series.c.project,
            t.series.c.benchmark,
            t.series.c.params,
            t.series.c.metric,
            t.series.c.branch,
        ).where(t.series.c.id == series_id)
    ).one()
    worker.enqueue_track(TrackKey(*row, machine_id=target.machine_id), rebuild=True)
    return answer


@router.get("/alert-settings")
def get_settings(
    _admin: Caller = Depends(caller), conn: sa.Connection = Depends(connection)
) -> dict[str, Any]:
    """The detector's thresholds and the webhook URL in effect."""
    if not _admin.admin:
        raise HTTPException(401, "this needs the admin token (Authorization: Bearer TOKEN)")
    return alerts.settings_view(conn)


@router.put("/alert-settings")
def put_settings(
    body: SettingsChange,
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> dict[str, Any]:
    """Change thresholds or the webhook URL (environment variables still win)."""
    if not who.admin:
        raise HTTPException(401, "this needs the admin token (Authorization: Bearer TOKEN)")
    for key, value in body.model_dump(exclude_none=True).items():
        try:
            alerts.store_setting(conn, key, str(value))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
    return alerts.settings_view(conn)


# -- baselines for `perffarm check --against REF --server URL` --------------------------------


@router.get("/baseline")
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
    who: Caller = Depends(caller),
    conn: sa.Connection = Depends(connection),
) -> dict[str, Any]:
    """The baseline runs for a contender: see docs/analysis.md, "Baselines that follow git"."""
    r, m = t.runs, t.machines
    query = (
        sa.select(
            r.c.id,
            r.c.project,
            m.c.name.label("machine"),
            r.c.branch,
            r.c.commit,
            r.c.commit_time,
            r.c.fingerprint,
            r.c.started_at,
        )
        .join(m, m.c.id == r.c.machine_id)
        .where(r.c.project == project, r.c.status == "ok")
    )
    if not who.admin:
        query = query.where(m.c.approved.is_(True))
    for column, value in (
        (r.c.branch, branch),
        (r.c.fingerprint, fingerprint),
        (m.c.name, machine),
    ):
        if value is not None:
            query = query.where(column == value)
    newest = (r.c.commit_time.desc(), r.c.started_at.desc(), r.c.id.desc())
    try:
        when = to_db(commit_time) if commit_time is not None else None
    except OverflowError:
        raise HTTPException(422, "commit_time: out of range in UTC") from None
    if when is None and commit is not None:
        # The server may know the commit's time from a run of it, on any branch.
        when = conn.execute(
            sa.select(r.c.commit_time).where(r.c.project == project, r.c.commit == commit).limit(1)
        ).scalar()
    rows: list[Any] = []
    exact = False
    if mode == "at":
        if commit is not None:
            rows = conn.execute(
                query.where(r.c.commit == commit).order_by(*newest).limit(limit)
            ).all()
            exact = bool(rows)
        if not rows:
            if when is not None:
                query = query.where(r.c.commit_time <= when)
            elif commit is not None:
                raise HTTPException(
                    422, f"commit {commit!r} has no run here: give commit_time as well"
                )
            rows = conn.execute(query.order_by(*newest).limit(limit)).all()
    else:
        if when is None:
            raise HTTPException(422, "mode=before needs commit_time (or a commit with a run here)")
        query = query.where(r.c.commit_time < when)
        if commit is not None:
            query = query.where(r.c.commit != commit)
        rows = conn.execute(query.order_by(*newest).limit(limit)).all()
    return {
        "mode": mode,
        "exact": exact,
        "runs": [
            {
                "id": row.id,
                "project": row.project,
                "machine": row.machine,
                "branch": row.branch,
                "commit": row.commit,
                "commit_time": iso(row.commit_time),
                "fingerprint": row.fingerprint,
                "started_at": iso(row.started_at),
            }
            for row in rows
        ],
    }
