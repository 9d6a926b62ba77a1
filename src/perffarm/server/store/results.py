"""Reading results: one series' points in commit order, result listings, the baseline runs
``perffarm check --server`` compares with, and the branches an agent should benchmark."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from perffarm.model import canonical_params
from perffarm.model.api import Baseline, BaselineRun, ResultRow
from perffarm.server.core.errors import Invalid, NotFound
from perffarm.server.core.paging import MAX_PAGE, cursor_int, decode_cursor, page_of, query_time
from perffarm.server.core.timeutil import iso, to_db, utc
from perffarm.server.core.visibility import can_see
from perffarm.server.store import tables as t
from perffarm.server.store.series import series_key
from perffarm.server.store.visibility import visible


def parse_params(text: str | None) -> str:
    """Query-string params (a JSON object) in their canonical stored form."""
    if text is None or text == "":
        return canonical_params({})
    try:
        value = json.loads(text)
    except ValueError:
        raise Invalid('params: not JSON; give an object such as {"clients": 4}') from None
    if not isinstance(value, dict):
        raise Invalid('params: give a JSON object such as {"clients": 4}')
    return canonical_params(value)


@dataclass(frozen=True)
class SeriesFilter:
    project: str
    benchmark: str
    metric: str
    params: str | None = None
    branch: str | None = None
    machine: str | None = None
    fingerprint: str | None = None


def series_points(
    conn: sa.Connection,
    flt: SeriesFilter,
    *,
    admin: bool,
    cursor: str | None,
    limit: int,
    viewer: int | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    params = parse_params(flt.params)
    machine_id = None
    fingerprint = flt.fingerprint
    if flt.machine is not None:
        row = conn.execute(
            sa.select(
                t.machines.c.id,
                t.machines.c.fingerprint,
                t.machines.c.approved,
                t.machines.c.owner_user_id,
            ).where(t.machines.c.name == flt.machine)
        ).first()
        if row is None or not can_see(row.approved, row.owner_user_id, admin=admin, viewer=viewer):
            return [], None
        machine_id = row.id
        if fingerprint is None:
            # A machine's series is the one of its current hardware and software.
            fingerprint = row.fingerprint or ""
    s = t.series
    if fingerprint is not None and flt.branch is not None:
        key = series_key(flt.project, flt.benchmark, params, flt.metric, fingerprint, flt.branch)
        series_ids = list(conn.execute(sa.select(s.c.id).where(s.c.key_hash == key)).scalars())
    else:
        lookup = sa.select(s.c.id).where(
            s.c.project == flt.project,
            s.c.benchmark == flt.benchmark,
            s.c.metric == flt.metric,
            s.c.params == params,
        )
        if fingerprint is not None:
            lookup = lookup.where(s.c.fingerprint == fingerprint)
        if flt.branch is not None:
            lookup = lookup.where(s.c.branch == flt.branch)
        series_ids = list(conn.execute(lookup.limit(MAX_PAGE)).scalars())
    if not series_ids:
        return [], None
    res, r, m = t.results, t.runs, t.machines
    query = (
        sa.select(
            res.c.id,
            res.c.run_id,
            res.c.commit_time.label("order_time"),
            res.c.n,
            res.c.mean,
            res.c.median,
            res.c.stdev,
            res.c.min,
            res.c.max,
            res.c.ci_low,
            res.c.ci_high,
            res.c.unit,
            res.c.direction,
            r.c.commit,
            r.c.commit_time,
            r.c.branch,
            r.c.fingerprint,
            m.c.name.label("machine"),
        )
        .join(r, r.c.id == res.c.run_id)
        .join(m, m.c.id == res.c.machine_id)
        .where(res.c.series_id.in_(series_ids), visible(m, admin=admin, viewer=viewer))
    )
    if machine_id is not None:
        query = query.where(res.c.machine_id == machine_id)
    if cursor:
        at, last_id = decode_cursor(cursor, 2)
        at = query_time(at, "cursor")
        last_id = cursor_int(last_id)
        query = query.where(
            sa.or_(res.c.commit_time > at, sa.and_(res.c.commit_time == at, res.c.id > last_id))
        )
    query = query.order_by(res.c.commit_time, res.c.id).limit(limit + 1)
    rows, next_cursor = page_of(
        conn.execute(query).all(),
        limit,
        lambda row: (utc(row.order_time).isoformat(), row.id),
    )
    # Plain dicts rather than models: a series page holds up to thousands of points, and
    # building models row by row costs more than the indexed query itself. The shape is
    # SeriesPoint's (the API schema), which the tests check.
    points = []
    for row in rows:
        (
            _,
            run_id,
            _,
            n,
            mean,
            median,
            stdev,
            low,
            high,
            ci_low,
            ci_high,
            unit,
            direction,
            commit,
            commit_time,
            branch,
            point_fingerprint,
            machine,
        ) = row
        points.append(
            {
                "run_id": run_id,
                "commit": commit,
                "commit_time": iso(commit_time),
                "branch": branch,
                "machine": machine,
                "fingerprint": point_fingerprint,
                "value": median if median is not None else mean,
                "n": n,
                "mean": mean,
                "median": median,
                "stdev": stdev,
                "min": low,
                "max": high,
                "ci_low": ci_low,
                "ci_high": ci_high,
                "unit": unit,
                "direction": direction,
            }
        )
    return points, next_cursor


@dataclass(frozen=True)
class ResultFilter:
    owner: str | None = None
    machine: str | None = None
    project: str | None = None
    benchmark: str | None = None
    metric: str | None = None


def list_results(
    conn: sa.Connection,
    flt: ResultFilter,
    *,
    admin: bool,
    cursor: str | None,
    limit: int,
    samples: bool,
    viewer: int | None = None,
) -> tuple[list[ResultRow], str | None]:
    res, r, m = t.results, t.runs, t.machines
    columns = [
        res.c.id,
        res.c.run_id,
        r.c.project,
        m.c.name.label("machine"),
        m.c.owner,
        r.c.branch,
        r.c.commit,
        r.c.commit_time,
        res.c.benchmark,
        res.c.params,
        res.c.metric,
        res.c.unit,
        res.c.direction,
        res.c.n,
        res.c.mean,
        res.c.median,
        res.c.stdev,
        res.c.min,
        res.c.max,
        res.c.ci_low,
        res.c.ci_high,
    ]
    if samples:
        columns.append(res.c.samples)
    query = sa.select(*columns).join(r, r.c.id == res.c.run_id).join(m, m.c.id == res.c.machine_id)
    for column, value in (
        (m.c.owner, flt.owner),
        (m.c.name, flt.machine),
        (r.c.project, flt.project),
        (res.c.benchmark, flt.benchmark),
        (res.c.metric, flt.metric),
    ):
        if value is not None:
            query = query.where(column == value)
    query = query.where(visible(m, admin=admin, viewer=viewer))
    if cursor:
        (last_id,) = decode_cursor(cursor, 1)
        query = query.where(res.c.id > cursor_int(last_id))
    rows, next_cursor = page_of(
        conn.execute(query.order_by(res.c.id).limit(limit + 1)).all(), limit, lambda row: (row.id,)
    )
    items = [
        ResultRow(
            id=row.id,
            run_id=row.run_id,
            project=row.project,
            machine=row.machine,
            owner=row.owner,
            branch=row.branch,
            commit=row.commit,
            commit_time=utc(row.commit_time),
            benchmark=row.benchmark,
            params=json.loads(row.params),
            metric=row.metric,
            unit=row.unit,
            direction=row.direction,
            n=row.n,
            mean=row.mean,
            median=row.median,
            stdev=row.stdev,
            min=row.min,
            max=row.max,
            ci_low=row.ci_low,
            ci_high=row.ci_high,
            samples=json.loads(row.samples) if samples else None,
        )
        for row in rows
    ]
    return items, next_cursor


def baseline(
    conn: sa.Connection,
    *,
    project: str,
    branch: str | None,
    commit: str | None,
    commit_time: datetime | None,
    mode: Literal["at", "before"],
    fingerprint: str | None,
    machine: str | None,
    limit: int,
    admin: bool,
) -> Baseline:
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
    if not admin:
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
        raise Invalid("commit_time: out of range in UTC") from None
    if when is None and commit is not None:
        # The server may know the commit's time from a run of it, on any branch.
        when = conn.execute(
            sa.select(r.c.commit_time).where(r.c.project == project, r.c.commit == commit).limit(1)
        ).scalar()
    rows: Sequence[Any] = []
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
                raise Invalid(f"commit {commit!r} has no run here: give commit_time as well")
            rows = conn.execute(query.order_by(*newest).limit(limit)).all()
    else:
        if when is None:
            raise Invalid("mode=before needs commit_time (or a commit with a run here)")
        query = query.where(r.c.commit_time < when)
        if commit is not None:
            query = query.where(r.c.commit != commit)
        rows = conn.execute(query.order_by(*newest).limit(limit)).all()
    return Baseline(
        mode=mode,
        exact=exact,
        runs=[
            BaselineRun(
                id=row.id,
                project=row.project,
                machine=row.machine,
                branch=row.branch,
                commit=row.commit,
                commit_time=utc(row.commit_time),
                fingerprint=row.fingerprint,
                started_at=utc(row.started_at),
            )
            for row in rows
        ],
    )


def active_branches(conn: sa.Connection, project: str, since: datetime) -> list[str]:
    """Branches with runs of approved machines since then, most recently active first;
    NotFound when the project has no run at all."""
    runs, machines = t.runs, t.machines
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
        raise NotFound(f"no runs of project {project!r}")
    return [row.branch for row in rows]
