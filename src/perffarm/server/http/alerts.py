"""Alerts, alert groups, "new normal" breaks and alert settings."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request

from perffarm.model.alerts import (
    Alert,
    AlertDetail,
    AlertGroup,
    AlertSettingsView,
    BreakAdded,
    BreakRequest,
    DetectionStatus,
    SeriesBreak,
    SettingsChange,
    StateChange,
)
from perffarm.model.api import Page
from perffarm.server import permissions
from perffarm.server.core.paging import MAX_PAGE
from perffarm.server.core.principal import Machine, Principal
from perffarm.server.http.deps import acting_principal, connection, principal
from perffarm.server.http.routetable import rule
from perffarm.server.services import alert_settings
from perffarm.server.services.detection import TrackKey
from perffarm.server.store import alerts, machines

router = APIRouter(tags=["alerts"])


def _id() -> Any:
    # A fresh Path per route: FastAPI binds a shared parameter object to its first name.
    return Path(..., ge=1, le=2**31 - 1)


def _granted(conn: sa.Connection, who: Principal, machine: Machine) -> bool:
    return who.user is not None and machines.granted(conn, machine.id, who.user.id)


@router.get("/alerts", response_model=Page[Alert], openapi_extra=rule(permissions.ANYONE))
def list_alerts(
    project: str | None = None,
    state: str | None = Query(None, description="new, acknowledged, invalid or fixed"),
    branch: str | None = None,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Page[Alert]:
    """Alerts, newest first: one per change point that matters (p and magnitude limits)."""
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
    return Page[Alert](items=items, next_cursor=next_cursor)


@router.get(
    "/alerts/status", response_model=DetectionStatus, openapi_extra=rule(permissions.ANYONE)
)
def detection_status(request: Request) -> DetectionStatus:
    """The background detector of this server process: jobs pending, tracks analysed."""
    return DetectionStatus(**request.app.state.detection.status())


@router.get(
    "/alerts/{alert_id}", response_model=AlertDetail, openapi_extra=rule(permissions.ANYONE)
)
def get_alert(
    alert_id: int = _id(),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> AlertDetail:
    """One alert with its history of states (who, when, note)."""
    return alerts.get_alert(conn, alert_id, admin=who.admin, viewer=who.viewer)


@router.post(
    "/alerts/{alert_id}/state",
    response_model=AlertDetail,
    openapi_extra=rule(permissions.MACHINE_ACTOR),
)
def change_state(
    body: StateChange,
    alert_id: int = _id(),
    who: Principal = Depends(acting_principal),
    conn: sa.Connection = Depends(connection),
) -> AlertDetail:
    """Acknowledge an alert, mark it invalid or fixed (or new again)."""
    machine = alerts.machine_of_alert(conn, alert_id, admin=who.admin, viewer=who.viewer)
    permissions.may_act_for_machine(who, machine, granted=_granted(conn, who, machine))
    alerts.set_state(conn, alert_id, body.state, by=who.describe(), note=body.note)
    return alerts.get_alert(conn, alert_id, admin=who.admin, viewer=who.viewer)


@router.get(
    "/alert-groups", response_model=Page[AlertGroup], openapi_extra=rule(permissions.ANYONE)
)
def list_groups(
    project: str | None = None,
    branch: str | None = None,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=200),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Page[AlertGroup]:
    """Alerts grouped by (project, branch, commit range), newest group first."""
    items, next_cursor = alerts.list_groups(
        conn,
        project=project,
        branch=branch,
        admin=who.admin,
        cursor=cursor,
        limit=limit,
        viewer=who.viewer,
    )
    return Page[AlertGroup](items=items, next_cursor=next_cursor)


@router.get(
    "/alert-groups/{group_id}", response_model=AlertGroup, openapi_extra=rule(permissions.ANYONE)
)
def get_group(
    group_id: int = _id(),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> AlertGroup:
    return alerts.get_group(conn, group_id, admin=who.admin, viewer=who.viewer)


@router.get(
    "/series/{series_id}/breaks",
    response_model=Page[SeriesBreak],
    openapi_extra=rule(permissions.ANYONE),
)
def list_breaks(
    series_id: int = _id(), conn: sa.Connection = Depends(connection)
) -> Page[SeriesBreak]:
    """The "new normal starts here" marks of one series."""
    return Page[SeriesBreak](items=alerts.list_breaks(conn, series_id))


@router.post(
    "/series/{series_id}/breaks",
    status_code=201,
    response_model=BreakAdded,
    openapi_extra=rule(permissions.MACHINE_ACTOR),
)
def add_break(
    body: BreakRequest,
    request: Request,
    series_id: int = _id(),
    who: Principal = Depends(acting_principal),
    conn: sa.Connection = Depends(connection),
) -> BreakAdded:
    """Mark "a new normal starts here" at a run's point: no alert across it from now on.

    Admin, or a machine of the same owner as the machine that made the run.
    """
    target = alerts.break_target(conn, series_id, body.run_id, admin=who.admin, viewer=who.viewer)
    permissions.may_act_for_machine(
        who, target.machine, granted=_granted(conn, who, target.machine)
    )
    answer = alerts.add_break(conn, target, by=who.describe(), note=body.note)
    track = alerts.track_of_series(conn, series_id)
    request.app.state.detection.enqueue_track(
        TrackKey(*track, machine_id=target.machine_id), rebuild=True
    )
    return answer


@router.get(
    "/alert-settings", response_model=AlertSettingsView, openapi_extra=rule(permissions.ADMIN)
)
def get_settings(
    who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> AlertSettingsView:
    """The detector's thresholds and the webhook URL in effect."""
    permissions.may_configure_alerts(who)
    return alert_settings.settings_view(conn)


@router.put(
    "/alert-settings", response_model=AlertSettingsView, openapi_extra=rule(permissions.ADMIN)
)
def put_settings(
    body: SettingsChange,
    who: Principal = Depends(acting_principal),
    conn: sa.Connection = Depends(connection),
) -> AlertSettingsView:
    """Change thresholds or the webhook URL (environment variables still win)."""
    permissions.may_configure_alerts(who)
    for key, value in body.model_dump(exclude_none=True).items():
        alert_settings.store_setting(conn, key, str(value))
    return alert_settings.settings_view(conn)
