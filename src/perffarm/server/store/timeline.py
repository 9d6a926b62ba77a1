"""The timeline's reads: which lines a chart draws, each line's points as columns, the open
alerts on a line, one point's details, and the series keys a chart can show.

Speed is the point of this module (docs/web.md, "Speed"): a line is one index-only range
scan (the covering index of migration 0006), read straight from the driver's cursor into
numpy columns. Every read follows the visibility rule (``store/visibility.py``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypedDict, cast

import numpy as np
import sqlalchemy as sa

from perffarm.server.core.errors import NotFound
from perffarm.server.core.paging import query_time
from perffarm.server.core.timeutil import iso, utc
from perffarm.server.core.visibility import can_see
from perffarm.server.store import tables as t
from perffarm.server.store.visibility import visible

#: A chart draws at most this many lines.
MAX_LINES = 12


class Line(TypedDict):
    """One line of a chart: the series behind it and, when the caller named machines, the
    one machine whose points it holds (``machine_id``; None: every visible machine's)."""

    series_ids: list[int]
    machine_id: int | None
    machine: str | None
    branch: str
    fingerprint: str


def _epoch(conn: sa.Connection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    # Seconds since 1970, to the millisecond, computed by the database: converting 100,000
    # datetimes in Python would cost more than the whole query.
    if conn.dialect.name == "sqlite":
        return sa.func.round((sa.func.julianday(column) - 2440587.5) * 86400.0, 3)
    # date_part is double precision; extract() is numeric since PostgreSQL 14, and numeric
    # arithmetic on 100,000 rows costs three times the whole index scan.
    seconds = sa.func.date_part("epoch", column, type_=sa.Float)
    return sa.func.floor(seconds * 1000.0 + 0.5, type_=sa.Float) / 1000.0


def lines(
    conn: sa.Connection,
    *,
    project: str,
    benchmark: str,
    metric: str,
    params: str,
    machines: tuple[str, ...],
    branches: tuple[str, ...],
    admin: bool,
    viewer: int | None,
) -> list[Line]:
    """The series to draw (``params`` in canonical form): one line per (fingerprint,
    branch), or per machine named and branch; machines the caller may not see are left out."""
    s, m = t.series, t.machines
    base = sa.select(s.c.id, s.c.fingerprint, s.c.branch).where(
        s.c.project == project,
        s.c.benchmark == benchmark,
        s.c.metric == metric,
        s.c.params == params,
    )
    if branches:
        base = base.where(s.c.branch.in_(branches))
    found: list[Line] = []
    if machines:
        for name in machines:
            row = conn.execute(
                sa.select(m.c.id, m.c.fingerprint, m.c.approved, m.c.owner_user_id).where(
                    m.c.name == name
                )
            ).first()
            if row is None or not can_see(
                row.approved, row.owner_user_id, admin=admin, viewer=viewer
            ):
                continue
            for series in conn.execute(
                base.where(s.c.fingerprint == (row.fingerprint or "")).order_by(s.c.branch)
            ):
                found.append(
                    Line(
                        series_ids=[series.id],
                        machine_id=row.id,
                        machine=name,
                        branch=series.branch,
                        fingerprint=series.fingerprint,
                    )
                )
    else:
        for series in conn.execute(base.order_by(s.c.fingerprint, s.c.branch).limit(MAX_LINES)):
            found.append(
                Line(
                    series_ids=[series.id],
                    machine_id=None,
                    machine=None,
                    branch=series.branch,
                    fingerprint=series.fingerprint,
                )
            )
    return found[:MAX_LINES]


def _line_where(line: Line, *, admin: bool, viewer: int | None) -> list[sa.ColumnElement[bool]]:
    """The results of one line that the caller may see (the visibility rule)."""
    res, m = t.results, t.machines
    where: list[sa.ColumnElement[bool]] = [res.c.series_id.in_(line["series_ids"])]
    if line["machine_id"] is not None:
        # One machine, whose visibility ``lines`` checked already.
        where.append(res.c.machine_id == line["machine_id"])
    elif not admin:
        shown = sa.select(m.c.id).where(visible(m, admin=admin, viewer=viewer))
        where.append(res.c.machine_id.in_(shown.scalar_subquery()))
    return where


def line_stats(
    conn: sa.Connection, line: Line, *, admin: bool, viewer: int | None
) -> tuple[int, int]:
    """The points of a line the caller may see, and their one machine (0: several)."""
    res = t.results
    count, low, high = conn.execute(
        sa.select(
            sa.func.count(), sa.func.min(res.c.machine_id), sa.func.max(res.c.machine_id)
        ).where(*_line_where(line, admin=admin, viewer=viewer))
    ).one()
    return count, (low if low == high else 0) or 0


def line_columns(
    conn: sa.Connection,
    line: Line,
    *,
    admin: bool,
    viewer: int | None,
    machine_id: int,
    with_commits: bool,
    limit: int | None,
    max_points: int,
    after: tuple[str, int] | None,
) -> dict[str, Any]:
    """One line's points as numpy columns, oldest first: ``id``, ``t`` (epoch seconds), ``y``
    (median, else mean), ``lo`` / ``hi`` (the spread), ``commit`` (12 characters, or None
    without ``with_commits``) and ``machine_ids``.

    ``limit``: the newest ``limit`` points before ``after`` (the commit time and id of the
    oldest point given so far); None: the oldest ``max_points``. ``machine_id``: the line's
    one machine, from ``line_stats`` (0: several, read per point).
    """
    res, r = t.results, t.runs
    sqlite = conn.dialect.name == "sqlite"
    # Numbers first (id, value, low, high, [machine]); then the time: on SQLite its stored
    # text, parsed by numpy below (julianday() per row costs SQLite a third more than the
    # whole scan), elsewhere seconds since 1970 computed by the database.
    columns: list[sa.ColumnElement[Any]] = [
        res.c.id,
        sa.func.coalesce(res.c.median, res.c.mean),
        sa.func.coalesce(res.c.ci_low, res.c.min),
        sa.func.coalesce(res.c.ci_high, res.c.max),
    ]
    # A line of one machine (the usual case) needs no machine per point.
    if not machine_id:
        columns.append(res.c.machine_id)
    columns.append(res.c.commit_time if sqlite else _epoch(conn, res.c.commit_time))
    width = len(columns)
    query = sa.select(*columns)
    if with_commits:
        query = sa.select(*columns, sa.func.substr(r.c.commit, 1, 12)).join(
            r, r.c.id == res.c.run_id
        )
    query = query.where(*_line_where(line, admin=admin, viewer=viewer))
    if after is not None:
        at, last_id = after
        moment = query_time(at, "before")
        # A row comparison, which both databases turn into one index range; the equivalent
        # OR makes PostgreSQL filter the whole line for every piece.
        query = query.where(
            sa.tuple_(res.c.commit_time, res.c.id)
            < sa.tuple_(
                sa.literal(moment, res.c.commit_time.type), sa.literal(last_id, res.c.id.type)
            )
        )
    if limit is None:
        query = query.order_by(res.c.commit_time, res.c.id).limit(max_points)
    else:
        query = query.order_by(res.c.commit_time.desc(), res.c.id.desc()).limit(limit)
    # Straight from the driver's cursor: these columns need no conversion, and SQLAlchemy's
    # row objects would cost as much as the query. The covering index of migration 0006
    # (series_id, commit_time, id + the values) makes this an index-only range scan.
    # (A DB-API cursor's fetchall gives a list; the stubs say a sequence.)
    rows = cast(list[Any], conn.execute(query).cursor.fetchall())
    if limit is not None:
        rows.reverse()
    # Columns through numpy (a structured array built in one pass, missing values as NaN,
    # written as null in JSON): transposing rows this way takes half the time of zip().
    fields = [("id", "i8"), ("y", "f8"), ("lo", "f8"), ("hi", "f8")]
    if not machine_id:
        fields.append(("machine", "i8"))
    fields.append(("t", "S32" if sqlite else "f8"))
    table = np.array(
        [row[:width] for row in rows] if with_commits else rows, dtype=np.dtype(fields)
    )
    times = table["t"]
    if sqlite:
        stamps = times.astype("datetime64[us]")
        micro = stamps.astype(np.int64)
        # To the millisecond, as the other databases give it.
        times = np.where(np.isnat(stamps), np.nan, np.floor_divide(micro + 500, 1000) / 1000.0)
    return {
        "id": np.ascontiguousarray(table["id"]),
        "t": np.ascontiguousarray(times, dtype=np.float64),
        "y": np.ascontiguousarray(table["y"]),
        "lo": np.ascontiguousarray(table["lo"]),
        "hi": np.ascontiguousarray(table["hi"]),
        "commit": [row[width] for row in rows] if with_commits else None,
        "machine_ids": (
            np.ascontiguousarray(table["machine"])
            if not machine_id
            else np.full(len(rows), machine_id, dtype=np.int64)
        ),
    }


def commit_time(conn: sa.Connection, result_id: int) -> datetime:
    """The time (UTC) a result is ordered by on its line."""
    moment = utc(
        conn.execute(
            sa.select(t.results.c.commit_time).where(t.results.c.id == result_id)
        ).scalar_one()
    )
    if moment is None:  # ingest stores the run's start when the commit has no time
        raise ValueError(f"result {result_id} has no commit time")
    return moment


def unit_and_direction(conn: sa.Connection, result_id: int) -> tuple[str | None, str | None]:
    """One result's unit and direction (one row by primary key); Nones when it is gone."""
    row = conn.execute(
        sa.select(t.results.c.unit, t.results.c.direction).where(t.results.c.id == result_id)
    ).first()
    return (row.unit, row.direction) if row is not None else (None, None)


def machine_names(conn: sa.Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(t.machines.c.id, t.machines.c.name).where(t.machines.c.id.in_(ids))
    )
    return {row.id: row.name for row in rows}


def commits(conn: sa.Connection, result_ids: list[int]) -> dict[int, str | None]:
    """The commit of each result's run."""
    if not result_ids:
        return {}
    rows = conn.execute(
        sa.select(t.results.c.id, t.runs.c.commit)
        .join(t.runs, t.runs.c.id == t.results.c.run_id)
        .where(t.results.c.id.in_(result_ids))
    )
    return {row.id: row.commit for row in rows}


def result_detail(
    conn: sa.Connection, result_id: int, *, admin: bool, viewer: int | None
) -> dict[str, Any]:
    """One stored result with its run's commit: what a timeline tooltip shows."""
    res, r, m = t.results, t.runs, t.machines
    query = (
        sa.select(
            res.c.id,
            res.c.run_id,
            r.c.commit,
            r.c.commit_time,
            r.c.branch,
            m.c.name.label("machine"),
            res.c.median,
            res.c.mean,
            res.c.ci_low,
            res.c.ci_high,
            res.c.min,
            res.c.max,
            res.c.unit,
            m.c.approved,
            m.c.owner_user_id,
        )
        .join(r, r.c.id == res.c.run_id)
        .join(m, m.c.id == res.c.machine_id)
        .where(res.c.id == result_id)
    )
    row = conn.execute(query).first()
    if row is None or not can_see(row.approved, row.owner_user_id, admin=admin, viewer=viewer):
        raise NotFound(f"no result {result_id}")
    return {
        "id": row.id,
        "run_id": row.run_id,
        "commit": row.commit,
        "commit_time": iso(row.commit_time),
        "branch": row.branch,
        "machine": row.machine,
        "value": row.median if row.median is not None else row.mean,
        "ci_low": row.ci_low,
        "ci_high": row.ci_high,
        "min": row.min,
        "max": row.max,
        "unit": row.unit,
    }


def line_mark(conn: sa.Connection, line: Line) -> int:
    """The largest result id that can be on a line: of its machine, or of all results.

    Results are only ever added, with larger ids, so while this stays the same the line
    holds the same points. One lookup at the end of an index (ix_results_machine, or the
    primary key), where counting the line's points would read all of them.
    """
    query = sa.select(sa.func.max(t.results.c.id))
    if line["machine_id"] is not None:
        query = query.where(t.results.c.machine_id == line["machine_id"])
    return conn.execute(query).scalar() or 0


def visible_machine_ids(conn: sa.Connection, *, admin: bool, viewer: int | None) -> tuple[int, ...]:
    """The ids of the machines the caller may see, in order (admins: every one)."""
    m = t.machines
    query = sa.select(m.c.id).where(visible(m, admin=admin, viewer=viewer)).order_by(m.c.id)
    return tuple(conn.execute(query).scalars())


def open_alerts(
    conn: sa.Connection,
    series_ids: list[int],
    machine_id: int | None,
    *,
    admin: bool,
    viewer: int | None,
) -> list[dict[str, Any]]:
    """The open alerts (new or acknowledged) on a line's series, oldest first, with the
    epoch seconds of the commit that brought each."""
    a = t.alerts
    query = sa.select(
        a.c.id,
        a.c.kind,
        a.c.magnitude,
        a.c.state,
        a.c.run_after,
        a.c.commit_after,
        _epoch(conn, a.c.commit_time_after).label("t"),
    ).where(
        a.c.series_id.in_(series_ids),
        a.c.state.in_(("new", "acknowledged")),
    )
    if machine_id is not None:
        query = query.where(a.c.machine_id == machine_id)
    if not admin:
        shown = sa.select(t.machines.c.id).where(visible(t.machines, admin=admin, viewer=viewer))
        query = query.where(a.c.machine_id.in_(shown.scalar_subquery()))
    return [dict(row._mapping) for row in conn.execute(query.order_by(a.c.id))]


def series_choices(conn: sa.Connection, project: str | None, *, limit: int) -> dict[str, Any]:
    """What a timeline can show: the series keys (of a project) and the branches."""
    s = t.series
    query = sa.select(s.c.project, s.c.benchmark, s.c.params, s.c.metric).distinct()
    if project:
        query = query.where(s.c.project == project)
    query = query.order_by(s.c.project, s.c.benchmark, s.c.params, s.c.metric).limit(limit)
    keys = [
        {
            "project": row.project,
            "benchmark": row.benchmark,
            "params": json.loads(row.params),
            "metric": row.metric,
        }
        for row in conn.execute(query)
    ]
    branches = sorted(
        b for b in conn.execute(sa.select(s.c.branch).distinct().limit(200)).scalars() if b
    )
    return {"keys": keys, "branches": branches}
