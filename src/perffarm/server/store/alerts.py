"""Alerts: storage, grouping by commit range, states and "new normal" breaks.

The background worker (``services/detection.py``) finds the change points; this module records the
ones that matter and answers the API. Recording is idempotent: the unique key of an alert
is (series, machine, first run of the new level), inserted with ON CONFLICT DO NOTHING, so
several server processes, or a rebuild after a restart, never record a change twice.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from perffarm.model.alerts import (
    Alert,
    AlertDetail,
    AlertEvent,
    AlertGroup,
    BreakAdded,
    CommitRange,
    Noise,
    SeriesBreak,
)
from perffarm.server.core.errors import Invalid, NotFound
from perffarm.server.core.paging import cursor_int, decode_cursor, page_of
from perffarm.server.core.principal import Machine
from perffarm.server.core.timeutil import now, to_db, utc
from perffarm.server.store import tables as t
from perffarm.server.store.machines import IDENTITY, machine_of
from perffarm.server.store.transactions import writing
from perffarm.server.store.visibility import visible

STATES = ("new", "acknowledged", "invalid", "fixed")
DETECTOR = "perffarm"  # who recorded a new alert


# -- recording --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewAlert:
    """A change point that matters, with everything an alert row needs."""

    series_id: int
    machine_id: int
    project: str
    benchmark: str
    params: str
    metric: str
    branch: str
    fingerprint: str
    unit: str
    direction: str
    magnitude: float
    magnitude_low: float | None
    magnitude_high: float | None
    p_value: float
    mean_before: float
    mean_after: float
    n_before: int
    n_after: int
    noise_cv: float | None
    noise_run_to_run: float | None
    noise_level: str
    run_before: str
    run_after: str
    commit_before: str
    commit_after: str
    commit_time_before: datetime | None
    commit_time_after: datetime | None

    @property
    def kind(self) -> str:
        """Direction-aware: a higher time is a regression, a higher throughput is not."""
        worse_up = self.direction != "higher"
        return "regression" if (self.magnitude > 0) == worse_up else "improvement"


def _insert(dialect: str, table: sa.Table) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def record(conn: sa.Connection, found: list[NewAlert]) -> tuple[list[int], list[int]]:
    """Record alerts (in the caller's transaction): (new alert ids, new group ids).

    A group or alert that already exists is left alone, so recording the same change twice,
    from two processes or after a restart, changes nothing.
    """
    dialect = conn.dialect.name
    created_alerts: list[int] = []
    created_groups: list[int] = []
    at = to_db(now())
    for alert in found:
        key = {
            "project": alert.project,
            "branch": alert.branch,
            "commit_before": alert.commit_before,
            "commit_after": alert.commit_after,
        }
        made = conn.execute(
            _insert(dialect, t.alert_groups)
            .values(**key, created_at=at)
            .on_conflict_do_nothing()
            .returning(t.alert_groups.c.id)
        ).first()
        if made is not None:
            group_id = made.id
            created_groups.append(group_id)
        else:
            g = t.alert_groups.c
            group_id = conn.execute(
                sa.select(g.id).where(*(getattr(g, name) == value for name, value in key.items()))
            ).scalar_one()
        row = {
            name: getattr(alert, name)
            for name in NewAlert.__dataclass_fields__
            if name not in ("commit_time_before", "commit_time_after")
        }
        row.update(
            magnitude=_finite(alert.magnitude) or 0.0,
            magnitude_low=_finite(alert.magnitude_low),
            magnitude_high=_finite(alert.magnitude_high),
            commit_time_before=to_db(alert.commit_time_before),
            commit_time_after=to_db(alert.commit_time_after),
            group_id=group_id,
            kind=alert.kind,
            state="new",
            state_by=DETECTOR,
            state_at=at,
            created_at=at,
        )
        inserted = conn.execute(
            _insert(dialect, t.alerts)
            .values(**row)
            .on_conflict_do_nothing()
            .returning(t.alerts.c.id)
        ).first()
        if inserted is not None:
            created_alerts.append(inserted.id)
            conn.execute(
                t.alert_events.insert().values(
                    alert_id=inserted.id, state="new", by=DETECTOR, at=at, note=None
                )
            )
    return created_alerts, created_groups


# -- reading ----------------------------------------------------------------------------------


def _alert(row: Any) -> Alert:
    ci = (
        (row.magnitude_low, row.magnitude_high)
        if row.magnitude_low is not None and row.magnitude_high is not None
        else None
    )
    return Alert(
        id=row.id,
        group_id=row.group_id,
        series_id=row.series_id,
        project=row.project,
        benchmark=row.benchmark,
        params=json.loads(row.params),
        metric=row.metric,
        machine=row.machine,
        branch=row.branch,
        fingerprint=row.fingerprint,
        unit=row.unit,
        direction=row.direction,
        kind=row.kind,
        magnitude=row.magnitude,
        magnitude_ci=ci,
        p_value=row.p_value,
        mean_before=row.mean_before,
        mean_after=row.mean_after,
        n_before=row.n_before,
        n_after=row.n_after,
        noise=Noise(cv=row.noise_cv, run_to_run=row.noise_run_to_run, level=row.noise_level),
        commit_range=CommitRange(
            before=row.commit_before or None,
            after=row.commit_after or None,
            run_before=row.run_before,
            run_after=row.run_after,
            commit_time_before=utc(row.commit_time_before),
            commit_time_after=utc(row.commit_time_after),
        ),
        state=row.state,
        state_by=row.state_by,
        state_at=utc(row.state_at),
        state_note=row.state_note,
        created_at=utc(row.created_at),
    )


def _alert_query(admin: bool, viewer: int | None) -> sa.Select:
    """Alerts of the machines the caller may see (the visibility rule: approved ones, and
    the viewer's own machines before approval)."""
    a, m = t.alerts, t.machines
    return (
        sa.select(a, m.c.name.label("machine"))
        .join(m, m.c.id == a.c.machine_id)
        .where(visible(m, admin=admin, viewer=viewer))
    )


def list_alerts(
    conn: sa.Connection,
    *,
    project: str | None,
    state: str | None,
    branch: str | None,
    admin: bool,
    cursor: str | None,
    limit: int,
    viewer: int | None = None,
) -> tuple[list[Alert], str | None]:
    """Alerts newest first."""
    if state is not None and state not in STATES:
        raise Invalid(f"state: {state!r} is not one of {', '.join(STATES)}")
    a = t.alerts
    query = _alert_query(admin, viewer)
    for column, value in ((a.c.project, project), (a.c.state, state), (a.c.branch, branch)):
        if value is not None:
            query = query.where(column == value)
    if cursor:
        (last_id,) = decode_cursor(cursor, 1)
        query = query.where(a.c.id < cursor_int(last_id))
    rows, next_cursor = page_of(
        conn.execute(query.order_by(a.c.id.desc()).limit(limit + 1)).all(),
        limit,
        lambda row: (row.id,),
    )
    return [_alert(row) for row in rows], next_cursor


def _events(conn: sa.Connection, alert_id: int) -> list[AlertEvent]:
    e = t.alert_events
    rows = conn.execute(
        sa.select(e.c.state, e.c.by, e.c.at, e.c.note)
        .where(e.c.alert_id == alert_id)
        .order_by(e.c.id)
    ).all()
    return [AlertEvent(state=r.state, by=r.by, at=utc(r.at), note=r.note) for r in rows]


def get_alert(
    conn: sa.Connection, alert_id: int, *, admin: bool, viewer: int | None = None
) -> AlertDetail:
    row = conn.execute(_alert_query(admin, viewer).where(t.alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    return AlertDetail(**dict(_alert(row)), history=_events(conn, alert_id))


def machine_of_alert(
    conn: sa.Connection, alert_id: int, *, admin: bool, viewer: int | None
) -> Machine:
    """The machine whose change an alert reports; NotFound when the caller may not see it."""
    a, m = t.alerts, t.machines
    row = conn.execute(
        sa.select(*IDENTITY)
        .join(a, a.c.machine_id == m.c.id)
        .where(a.c.id == alert_id, visible(m, admin=admin, viewer=viewer))
    ).first()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    return machine_of(row)


def set_state(conn: sa.Connection, alert_id: int, state: str, *, by: str, note: str | None) -> None:
    """Record a new state of an alert, and the change in its history."""
    if state not in STATES:
        raise Invalid(f"state: {state!r} is not one of {', '.join(STATES)}")
    at = to_db(now())
    with writing(conn):
        done = conn.execute(
            t.alerts.update()
            .where(t.alerts.c.id == alert_id)
            .values(state=state, state_by=by, state_at=at, state_note=note)
        )
        if done.rowcount == 0:
            raise NotFound(f"no alert {alert_id}")
        conn.execute(
            t.alert_events.insert().values(alert_id=alert_id, state=state, by=by, at=at, note=note)
        )


def list_groups(
    conn: sa.Connection,
    *,
    project: str | None,
    branch: str | None,
    admin: bool,
    cursor: str | None,
    limit: int,
    viewer: int | None = None,
) -> tuple[list[AlertGroup], str | None]:
    """Groups newest first, each with its (visible) alerts; groups with none are left out."""
    g, a, m = t.alert_groups, t.alerts, t.machines
    seen = (
        sa.select(a.c.group_id)
        .join(m, m.c.id == a.c.machine_id)
        .where(visible(m, admin=admin, viewer=viewer))
    )
    query = sa.select(g).where(g.c.id.in_(seen))
    for column, value in ((g.c.project, project), (g.c.branch, branch)):
        if value is not None:
            query = query.where(column == value)
    if cursor:
        (last_id,) = decode_cursor(cursor, 1)
        query = query.where(g.c.id < cursor_int(last_id))
    page, next_cursor = page_of(
        conn.execute(query.order_by(g.c.id.desc()).limit(limit + 1)).all(),
        limit,
        lambda row: (row.id,),
    )
    members: dict[int, list[Alert]] = {row.id: [] for row in page}
    if page:
        alert_rows = conn.execute(
            _alert_query(admin, viewer).where(a.c.group_id.in_(list(members))).order_by(a.c.id)
        ).all()
        for row in alert_rows:
            members[row.group_id].append(_alert(row))
    return [_group(row, members[row.id]) for row in page], next_cursor


def _group(row: Any, members: list[Alert]) -> AlertGroup:
    states: dict[str, int] = {}
    for alert in members:
        states[alert.state] = states.get(alert.state, 0) + 1
    return AlertGroup(
        id=row.id,
        project=row.project,
        branch=row.branch or None,
        commit_before=row.commit_before or None,
        commit_after=row.commit_after or None,
        created_at=utc(row.created_at),
        alerts=members,
        regressions=sum(1 for alert in members if alert.kind == "regression"),
        improvements=sum(1 for alert in members if alert.kind == "improvement"),
        states=states,
    )


def get_group(
    conn: sa.Connection, group_id: int, *, admin: bool, viewer: int | None = None
) -> AlertGroup:
    row = conn.execute(sa.select(t.alert_groups).where(t.alert_groups.c.id == group_id)).first()
    if row is None:
        raise NotFound(f"no alert group {group_id}")
    alert_rows = conn.execute(
        _alert_query(admin, viewer).where(t.alerts.c.group_id == group_id).order_by(t.alerts.c.id)
    ).all()
    if not alert_rows:
        raise NotFound(f"no alert group {group_id}")
    return _group(row, [_alert(r) for r in alert_rows])


# -- breaks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BreakTarget:
    series_id: int
    machine: Machine
    run_id: str

    @property
    def machine_id(self) -> int:
        return self.machine.id


def break_target(
    conn: sa.Connection, series_id: int, run_id: str, *, admin: bool, viewer: int | None
) -> BreakTarget:
    """The point of ``run_id`` in series ``series_id``, or NotFound / Invalid saying why."""
    res, m = t.results, t.machines
    row = conn.execute(
        sa.select(*IDENTITY)
        .join(res, res.c.machine_id == m.c.id)
        .where(
            res.c.series_id == series_id,
            res.c.run_id == run_id,
            visible(m, admin=admin, viewer=viewer),
        )
        .limit(1)
    ).first()
    if row is None:
        exists = conn.execute(sa.select(t.series.c.id).where(t.series.c.id == series_id)).first()
        if exists is None:
            raise NotFound(f"no series {series_id}")
        raise Invalid(f"run_id: run {run_id} has no point in series {series_id}")
    return BreakTarget(series_id, machine_of(row), run_id)


def track_of_series(conn: sa.Connection, series_id: int) -> tuple[str, str, str, str, str]:
    """(project, benchmark, params, metric, branch) of a series: its track without machine."""
    s = t.series
    row = conn.execute(
        sa.select(s.c.project, s.c.benchmark, s.c.params, s.c.metric, s.c.branch).where(
            s.c.id == series_id
        )
    ).one()
    return (row.project, row.benchmark, row.params, row.metric, row.branch)


def add_break(conn: sa.Connection, target: BreakTarget, *, by: str, note: str | None) -> BreakAdded:
    """Record "a new normal starts here"; alerts still new at exactly that point become invalid."""
    at = to_db(now())
    sb, a = t.series_breaks, t.alerts
    with writing(conn):
        conn.execute(
            _insert(conn.dialect.name, sb)
            .values(
                series_id=target.series_id,
                machine_id=target.machine_id,
                run_id=target.run_id,
                created_by=by,
                created_at=at,
                note=note,
            )
            .on_conflict_do_nothing()
        )
        stale = list(
            conn.execute(
                sa.select(a.c.id).where(
                    a.c.series_id == target.series_id,
                    a.c.machine_id == target.machine_id,
                    a.c.run_after == target.run_id,
                    a.c.state == "new",
                )
            ).scalars()
        )
        reason = "a new normal starts here" + (f": {note}" if note else "")
        for alert_id in stale:
            conn.execute(
                a.update()
                .where(a.c.id == alert_id)
                .values(state="invalid", state_by=by, state_at=at, state_note=reason)
            )
            conn.execute(
                t.alert_events.insert().values(
                    alert_id=alert_id, state="invalid", by=by, at=at, note=reason
                )
            )
    return BreakAdded(
        series_id=target.series_id,
        run_id=target.run_id,
        created_by=by,
        created_at=at,
        note=note,
        invalidated_alerts=stale,
    )


def list_breaks(conn: sa.Connection, series_id: int) -> list[SeriesBreak]:
    sb, m = t.series_breaks, t.machines
    rows = conn.execute(
        sa.select(sb, m.c.name.label("machine"))
        .join(m, m.c.id == sb.c.machine_id)
        .where(sb.c.series_id == series_id)
        .order_by(sb.c.id)
    ).all()
    return [
        SeriesBreak(
            series_id=r.series_id,
            run_id=r.run_id,
            machine=r.machine,
            created_by=r.created_by,
            created_at=utc(r.created_at),
            note=r.note,
        )
        for r in rows
    ]
