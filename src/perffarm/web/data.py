"""What each page shows, as plain data: the page renders it and its JSON twin returns it.

Both callers go through these functions, so a page and its twin cannot disagree. They build
on ``perffarm.server.queries`` (runs, documents, series lookups) and add the few reads only
the dashboard needs (projects, owners, a whole series as columns).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pydantic_core
import sqlalchemy as sa

from perffarm.analysis.changepoint import detect
from perffarm.analysis.compare import compare_runs
from perffarm.gcpause import collector_paused
from perffarm.model import Direction, Result
from perffarm.server.core.errors import Invalid, NotFound
from perffarm.server.core.paging import cursor_int, decode_cursor, encode_cursor, query_time
from perffarm.server.core.timeutil import utc
from perffarm.server.core.visibility import can_see
from perffarm.server.store import alerts as alert_store
from perffarm.server.store import machines as machine_store
from perffarm.server.store import results as result_store
from perffarm.server.store import runs as run_store
from perffarm.server.store import tables as t
from perffarm.server.store.visibility import visible as visible_machines

# A timeline draws at most this many points per line: uPlot stays smooth well beyond it, and
# the answer stays a few megabytes.
MAX_TIMELINE_POINTS = 200_000
MAX_LINES = 12
# Lines up to this many points carry every point's commit; longer ones leave it out.
COMMITS_INLINE = 20_000
LATEST_RUNS = 20


def _json_time(value: datetime | None) -> str | None:
    aware = utc(value)
    return aware.isoformat().replace("+00:00", "Z") if aware else None


# -- home -------------------------------------------------------------------------------------


def projects(
    conn: sa.Connection, *, admin: bool, viewer: int | None = None
) -> list[dict[str, Any]]:
    """Each project with its number of runs and its latest run's start."""
    r, m = t.runs, t.machines
    query = (
        sa.select(
            r.c.project,
            sa.func.count().label("runs"),
            sa.func.max(r.c.started_at).label("latest"),
        )
        .join(m, m.c.id == r.c.machine_id)
        .where(visible_machines(m, admin=admin, viewer=viewer))
        .group_by(r.c.project)
        .order_by(r.c.project)
    )
    return [
        {"project": row.project, "runs": row.runs, "latest": _json_time(row.latest)}
        for row in conn.execute(query)
    ]


def open_alerts(
    conn: sa.Connection, *, admin: bool, viewer: int | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Alerts not dealt with yet (new or acknowledged), newest first."""
    found = []
    for state in ("new", "acknowledged"):
        items, _ = alert_store.list_alerts(
            conn,
            project=None,
            state=state,
            branch=None,
            admin=admin,
            cursor=None,
            limit=limit,
            viewer=viewer,
        )
        found += [alert.model_dump(mode="json") for alert in items]
    found.sort(key=lambda alert: alert["id"], reverse=True)
    return found[:limit]


def home(conn: sa.Connection, *, admin: bool, viewer: int | None = None) -> dict[str, Any]:
    runs, _ = run_store.list_runs(
        conn, run_store.RunFilter(), admin=admin, cursor=None, limit=LATEST_RUNS, viewer=viewer
    )
    return {
        "projects": projects(conn, admin=admin, viewer=viewer),
        "latest_runs": [run.model_dump(mode="json") for run in runs],
        "machines": machines_list(conn, admin=admin, viewer=viewer)["machines"],
        "alerts": open_alerts(conn, admin=admin, viewer=viewer),
    }


# -- machines ---------------------------------------------------------------------------------


def hardware(metadata: dict[str, Any]) -> dict[str, Any]:
    """The few environment facts that tell machines apart at a glance."""
    cpu = metadata.get("cpu") or {}
    memory = metadata.get("memory") or {}
    os_info = metadata.get("os") or {}
    total = memory.get("total_bytes") or memory.get("total")
    return {
        "cpu": cpu.get("model") or cpu.get("brand"),
        "cores": cpu.get("cores") or cpu.get("logical_cores") or cpu.get("physical_cores"),
        "memory_gib": round(total / 2**30, 1) if isinstance(total, int | float) else None,
        "os": os_info.get("name") or os_info.get("system") or os_info.get("pretty_name"),
        "kernel": os_info.get("kernel") or os_info.get("release"),
    }


def _machine_row(info: dict[str, Any]) -> dict[str, Any]:
    info["hardware"] = hardware(info.get("metadata") or {})
    return info


def _machines(
    conn: sa.Connection, *, admin: bool, viewer: int | None, owner: str | None = None
) -> list[dict[str, Any]]:
    """Machines by name that the caller may see (the visibility rule), with their hardware."""
    items, _ = machine_store.listing(
        conn, admin=admin, owner=owner, after=None, limit=1000, viewer=viewer
    )
    return [_machine_row(info.model_dump(mode="json")) for info in items]


def machines_list(conn: sa.Connection, *, admin: bool, viewer: int | None = None) -> dict[str, Any]:
    return {"machines": _machines(conn, admin=admin, viewer=viewer)}


def machine_page(
    conn: sa.Connection, name: str, *, admin: bool, viewer: int | None = None
) -> dict[str, Any]:
    """One machine, its fingerprint changes and its latest runs; NotFound when hidden."""
    row = conn.execute(
        sa.select(t.machines.c.approved, t.machines.c.owner_user_id).where(
            t.machines.c.name == name
        )
    ).first()
    if row is None or not can_see(row.approved, row.owner_user_id, admin=admin, viewer=viewer):
        raise NotFound(f"no machine named {name!r}")
    try:
        info = machine_store.get(conn, name, admin=True)
    except NotFound:
        raise NotFound(f"no machine named {name!r}") from None
    runs, next_cursor = run_store.list_runs(
        conn, run_store.RunFilter(machine=name), admin=admin, cursor=None, limit=100, viewer=viewer
    )
    return {
        "machine": _machine_row(info.model_dump(mode="json")),
        "runs": [run.model_dump(mode="json") for run in runs],
        "more_runs": next_cursor is not None,
    }


# -- people -----------------------------------------------------------------------------------


def owners(conn: sa.Connection, *, admin: bool, viewer: int | None = None) -> list[dict[str, Any]]:
    """Everyone who owns a machine, with how many machines and runs."""
    m, r = t.machines, t.runs
    runs = sa.func.count(r.c.id)
    query = (
        sa.select(
            m.c.owner,
            sa.func.count(sa.distinct(m.c.id)).label("machines"),
            runs.label("runs"),
            sa.func.max(r.c.started_at).label("latest"),
        )
        .outerjoin(r, r.c.machine_id == m.c.id)
        .where(visible_machines(m, admin=admin, viewer=viewer))
        .group_by(m.c.owner)
        .order_by(m.c.owner)
    )
    return [
        {
            "owner": row.owner,
            "machines": row.machines,
            "runs": row.runs,
            "latest": _json_time(row.latest),
        }
        for row in conn.execute(query)
    ]


def person(
    conn: sa.Connection,
    owner: str | None,
    *,
    admin: bool,
    cursor: str | None,
    limit: int = 200,
    viewer: int | None = None,
) -> dict[str, Any]:
    """One owner's results (``owner=None``: everybody's), newest stored last, one page."""
    items, next_cursor = result_store.list_results(
        conn,
        result_store.ResultFilter(owner=owner),
        admin=admin,
        cursor=cursor,
        limit=limit,
        samples=False,
        viewer=viewer,
    )
    machines = []
    if owner is not None:
        machines = _machines(conn, admin=admin, viewer=viewer, owner=owner)
    return {
        "owner": owner,
        "machines": machines,
        "results": [item.model_dump(mode="json") for item in items],
        "next_cursor": next_cursor,
    }


# -- one run ----------------------------------------------------------------------------------


def run_page(
    conn: sa.Connection, run_id: str, *, admin: bool, viewer: int | None = None
) -> dict[str, Any]:
    """The stored document plus what the server knows beside it; NotFound when hidden."""
    text = run_store.run_document(conn, run_id, admin=admin, viewer=viewer)
    document = json.loads(text)
    row = conn.execute(
        sa.select(t.runs.c.received_at, t.machines.c.name, t.machines.c.owner)
        .join(t.machines, t.machines.c.id == t.runs.c.machine_id)
        .where(t.runs.c.id == run_id)
    ).one()
    # The bytes stay on the attachment route; the page needs only what to list.
    for item in document.get("attachments") or []:
        item.pop("content", None)
    # The run before this one on the same machine and branch: what "compare" starts from.
    previous, _ = run_store.list_runs(
        conn,
        run_store.RunFilter(
            project=document["project"],
            machine=row.name,
            branch=(document.get("source") or {}).get("branch"),
            until=datetime.fromisoformat(document["started_at"].replace("Z", "+00:00")),
        ),
        admin=admin,
        cursor=None,
        limit=1,
        viewer=viewer,
    )
    return {
        "document": document,
        "machine": row.name,
        "owner": row.owner,
        "received_at": _json_time(row.received_at),
        "previous_run": previous[0].id if previous else None,
    }


def result_run(
    conn: sa.Connection, result_id: int, *, admin: bool, viewer: int | None = None
) -> str:
    """The run a stored result belongs to (a timeline point links through it)."""
    query = (
        sa.select(t.results.c.run_id)
        .join(t.machines, t.machines.c.id == t.results.c.machine_id)
        .where(t.results.c.id == result_id)
        .where(visible_machines(t.machines, admin=admin, viewer=viewer))
    )
    run_id = conn.execute(query).scalar()
    if run_id is None:
        raise NotFound(f"no result {result_id}")
    return run_id


# -- timeline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineQuery:
    project: str
    benchmark: str
    metric: str
    params: str | None = None
    machines: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    x: str = "commit"
    commits: bool | None = None
    """Every point's commit in the answer: None decides by the length of the line."""
    limit: int | None = None
    """At most this many points per line, the newest first (None: every point)."""
    before: str | None = None
    """``next_cursor`` of the previous answer: the points before those already given."""


def _epoch(conn: sa.Connection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    # Seconds since 1970, to the millisecond, computed by the database: converting 100,000
    # datetimes in Python would cost more than the whole query.
    if conn.dialect.name == "sqlite":
        return sa.func.round((sa.func.julianday(column) - 2440587.5) * 86400.0, 3)
    # date_part is double precision; extract() is numeric since PostgreSQL 14, and numeric
    # arithmetic on 100,000 rows costs three times the whole index scan.
    seconds = sa.func.date_part("epoch", column, type_=sa.Float)
    return sa.func.floor(seconds * 1000.0 + 0.5, type_=sa.Float) / 1000.0


def _lines(
    conn: sa.Connection, q: TimelineQuery, *, admin: bool, viewer: int | None
) -> list[dict[str, Any]]:
    """The series rows to draw: one line per (fingerprint, branch), or per machine given."""
    params = result_store.parse_params(q.params)
    s, m = t.series, t.machines
    base = sa.select(s.c.id, s.c.fingerprint, s.c.branch).where(
        s.c.project == q.project,
        s.c.benchmark == q.benchmark,
        s.c.metric == q.metric,
        s.c.params == params,
    )
    if q.branches:
        base = base.where(s.c.branch.in_(q.branches))
    lines: list[dict[str, Any]] = []
    if q.machines:
        for name in q.machines:
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
                lines.append(
                    {
                        "series_ids": [series.id],
                        "machine_id": row.id,
                        "machine": name,
                        "branch": series.branch,
                        "fingerprint": series.fingerprint,
                    }
                )
    else:
        for series in conn.execute(base.order_by(s.c.fingerprint, s.c.branch).limit(MAX_LINES)):
            lines.append(
                {
                    "series_ids": [series.id],
                    "machine_id": None,
                    "machine": None,
                    "branch": series.branch,
                    "fingerprint": series.fingerprint,
                }
            )
    return lines[:MAX_LINES]


def _line_where(
    line: dict[str, Any], *, admin: bool, viewer: int | None
) -> list[sa.ColumnElement[bool]]:
    """The results of one line that the caller may see (the visibility rule)."""
    res, m = t.results, t.machines
    where = [res.c.series_id.in_(line["series_ids"])]
    if line["machine_id"] is not None:
        # One machine, whose visibility _lines checked already.
        where.append(res.c.machine_id == line["machine_id"])
    elif not admin:
        visible = sa.select(m.c.id).where(visible_machines(m, admin=admin, viewer=viewer))
        where.append(res.c.machine_id.in_(visible.scalar_subquery()))
    return where


def _line_stats(conn: sa.Connection, where: list[sa.ColumnElement[bool]]) -> tuple[int, int]:
    """Points of a line and its one machine (0: several)."""
    res = t.results
    count, low, high = conn.execute(
        sa.select(
            sa.func.count(), sa.func.min(res.c.machine_id), sa.func.max(res.c.machine_id)
        ).where(*where)
    ).one()
    return count, (low if low == high else 0) or 0


def _line_columns(
    conn: sa.Connection,
    where: list[sa.ColumnElement[bool]],
    *,
    total: int,
    machine_id: int,
    commits: bool | None,
    limit: int | None,
    after: tuple[str, int, int] | None,
) -> dict[str, Any]:
    """One line's points as numpy columns, oldest first.

    ``limit``: the newest ``limit`` points before ``after`` (the oldest point given so far,
    and how many were given). ``total`` and ``machine_id`` come from ``_line_stats``.
    """
    res, r = t.results, t.runs
    # Looking up each point's commit in the runs table doubles the cost of a long line; past
    # COMMITS_INLINE points the page asks for the commit of the point it hovers instead.
    with_commits = total <= COMMITS_INLINE if commits is None else commits
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
    query = query.where(*where)
    given = 0
    if after is not None:
        at, last_id, given = after
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
        query = query.order_by(res.c.commit_time, res.c.id).limit(MAX_TIMELINE_POINTS)
    else:
        query = query.order_by(res.c.commit_time.desc(), res.c.id.desc()).limit(limit)
    # Straight from the driver's cursor: these columns need no conversion, and SQLAlchemy's
    # row objects would cost as much as the query. The covering index of migration 0006
    # (series_id, commit_time, id + the values) makes this an index-only range scan.
    rows = conn.execute(query).cursor.fetchall()
    if limit is not None:
        rows.reverse()
    # Columns through numpy (a structured array built in one pass, missing values as NaN,
    # written as null by to_json): transposing rows this way takes half the time of zip().
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
        "total": total,
        "offset": max(0, total - given - len(rows)),
    }


def result_detail(
    conn: sa.Connection, result_id: int, *, admin: bool, viewer: int | None = None
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
        "commit_time": _json_time(row.commit_time),
        "branch": row.branch,
        "machine": row.machine,
        "value": row.median if row.median is not None else row.mean,
        "ci_low": row.ci_low,
        "ci_high": row.ci_high,
        "min": row.min,
        "max": row.max,
        "unit": row.unit,
    }


def _commits(conn: sa.Connection, result_ids: list[int]) -> dict[int, str | None]:
    if not result_ids:
        return {}
    rows = conn.execute(
        sa.select(t.results.c.id, t.runs.c.commit)
        .join(t.runs, t.runs.c.id == t.results.c.run_id)
        .where(t.results.c.id.in_(result_ids))
    )
    return {row.id: row.commit for row in rows}


def _machine_names(conn: sa.Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(t.machines.c.id, t.machines.c.name).where(t.machines.c.id.in_(ids))
    )
    return {row.id: row.name for row in rows}


def timeline(
    conn: sa.Connection,
    q: TimelineQuery,
    *,
    admin: bool,
    viewer: int | None = None,
) -> dict[str, Any]:
    """Every line of the chart as columns (numpy arrays), not one object per point.

    Columns keep a 100,000-point answer a few megabytes and let the browser hand the arrays
    to the chart as they are. With ``q.limit`` each line holds its newest ``limit`` points
    (before ``q.before``), ``offset`` says where they start in the whole line (``total``
    points), and ``next_cursor`` asks for the points before them (null: nothing is left).
    """
    found = _lines(conn, q, admin=admin, viewer=viewer)
    wheres = [_line_where(line, admin=admin, viewer=viewer) for line in found]
    # Per line of _lines: None (no point to show), 0 (all given already), or where to go on:
    # [time, id of the oldest point given, points given, total, its one machine or 0]. The
    # cursor carries the line's total, so a later piece reads only its own points.
    afters: list[Any]
    if q.before:
        afters = decode_cursor(q.before, len(found))
        for after in afters:
            if not (after in (None, 0) or (isinstance(after, list) and len(after) == 5)):
                raise Invalid("before: not a cursor this server gave out")
    else:
        stats = [_line_stats(conn, where) for where in wheres]
        afters = [[None, 0, 0, total, machine] if total else None for total, machine in stats]
    lines = []
    cursor: list[Any] = []
    for line, where, after in zip(found, wheres, afters, strict=True):
        if after is None:
            cursor.append(None)
            continue
        if after == 0:  # finished: an empty piece keeps the lines in their places
            total, machine_id, start = 0, line["machine_id"] or 0, None
        else:
            at, last, given, total, machine_id = after
            for value in (last, given, total, machine_id):
                cursor_int(value, "before")
            start = (at, last, given) if at is not None else None
        columns = _line_columns(
            conn,
            where,
            total=total,
            machine_id=machine_id or (line["machine_id"] or 0),
            commits=q.commits,
            limit=0 if after == 0 else q.limit,
            after=start,
        )
        if columns["offset"] > 0 and len(columns["id"]):
            oldest = int(columns["id"][0])
            moment = conn.execute(
                sa.select(t.results.c.commit_time).where(t.results.c.id == oldest)
            ).scalar_one()
            given = total - columns["offset"]
            at = utc(moment).isoformat()  # type: ignore[union-attr]
            cursor.append([at, oldest, given, total, machine_id])
        else:
            cursor.append(0)
        lines.append({**line, **columns})
    # Unit and direction: those of the line's newest point given (one row by primary key).
    res = t.results
    for line in lines:
        first = None
        if len(line["id"]):
            first = conn.execute(
                sa.select(res.c.unit, res.c.direction).where(res.c.id == int(line["id"][-1]))
            ).first()
        line["unit"] = first.unit if first else None
        line["direction"] = first.direction if first else None
    ids = {int(mid) for line in lines for mid in np.unique(line["machine_ids"])}
    names = _machine_names(conn, ids)
    for line in lines:
        # Machines per point as indexes into one short list of names.
        present, index = np.unique(line.pop("machine_ids"), return_inverse=True)
        line["machines"] = [names.get(int(mid), "?") for mid in present]
        line["machine_index"] = index.astype(np.int64)
        if line["machine"] is None and len(line["machines"]) == 1:
            line["machine"] = line["machines"][0]
        line["label"] = (
            f"{line['machine'] or line['fingerprint'][:12] or '?'} · {line['branch'] or '-'}"
        )
        # The series behind the line, for the alerts drawn on it (see _with_alerts).
        line["series_ids"] = line.pop("series_ids")
        line["filter_machine_id"] = line.pop("machine_id")
    more = any(c not in (None, 0) for c in cursor)
    return {
        "query": {
            "project": q.project,
            "benchmark": q.benchmark,
            "metric": q.metric,
            "params": json.loads(result_store.parse_params(q.params)),
            "machines": list(q.machines),
            "branches": list(q.branches),
            "x": q.x,
        },
        "lines": lines,
        "points": sum(len(line["id"]) for line in lines),
        "total": sum(line["total"] for line in lines),
        "next_cursor": encode_cursor(cursor) if more else None,
    }


class Lru:
    """A small least-recently-used map shared by the server's threads."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)


# Keyed by ``timeline_version``: what the lines hold now. Results are only ever added (with
# a larger id), so a line whose count and largest id are unchanged has the same points. A
# 100,000-point timeline takes a few hundred milliseconds to read and seconds to analyse;
# viewed again it answers from here. Bytes, not lists, to keep each entry a few megabytes.
_timelines = Lru(32)
_changepoints = Lru(64)


def _loads(text: str) -> Any:
    return orjson.loads(text) if orjson is not None else json.loads(text)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


try:
    import orjson
except ImportError:  # pragma: no cover - orjson comes with the loadtest extra
    orjson = None  # type: ignore[assignment]


def to_json(value: Any) -> bytes:
    """JSON bytes, fast, with NaN (a missing value) written as null; numpy arrays as lists.

    orjson (when installed) writes numpy columns straight from their memory; pydantic-core
    is the fallback, several times faster than json.dumps either way.
    """
    if orjson is not None:
        try:
            return orjson.dumps(
                value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=_plain
            )
        except TypeError:
            pass  # e.g. an integer beyond 64 bits: pydantic-core writes it
    return pydantic_core.to_json(value, inf_nan_mode="null", fallback=_plain)


def _line_mark(conn: sa.Connection, line: dict[str, Any]) -> int:
    """The largest result id that can be on a line: of its machine, or of all results.

    Results are only ever added, with larger ids, so while this stays the same the line
    holds the same points. One lookup at the end of an index (ix_results_machine, or the
    primary key), where counting the line's points would read all of them.
    """
    query = sa.select(sa.func.max(t.results.c.id))
    if line["machine_id"] is not None:
        query = query.where(t.results.c.machine_id == line["machine_id"])
    return conn.execute(query).scalar() or 0


def timeline_version(
    conn: sa.Connection, q: TimelineQuery, *, admin: bool, viewer: int | None = None
) -> tuple[Any, ...]:
    """What a timeline answer depends on, in a few index lookups (see _line_mark)."""
    marks = tuple(
        (tuple(line["series_ids"]), line["machine_id"], _line_mark(conn, line))
        for line in _lines(conn, q, admin=admin, viewer=viewer)
    )
    # Approving a machine changes what everybody sees, and its owner sees it before.
    visible = (
        ()
        if admin
        else tuple(
            conn.execute(
                sa.select(t.machines.c.id)
                .where(visible_machines(t.machines, admin=admin, viewer=viewer))
                .order_by(t.machines.c.id)
            ).scalars()
        )
    )
    return (q, admin, marks, visible)


def timeline_json(
    conn: sa.Connection, q: TimelineQuery, *, admin: bool, viewer: int | None = None
) -> bytes:
    """``timeline`` as JSON bytes, from the cache while the lines are unchanged.

    A later piece of a long line (``q.before``) is read as it is: it costs no more than
    finding out whether it changed would.
    """
    if q.before:
        return to_json(timeline(conn, q, admin=admin, viewer=viewer))
    version = timeline_version(conn, q, admin=admin, viewer=viewer)
    cached = _timelines.get(version)
    if cached is None:
        cached = to_json(timeline(conn, q, admin=admin, viewer=viewer))
        _timelines.put(version, cached)
    return cached


def timeline_changepoints(
    conn: sa.Connection,
    q: TimelineQuery,
    *,
    admin: bool,
    viewer: int | None = None,
    data: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Change points of each line (same order as ``timeline``'s lines), by point index."""
    q = replace(q, limit=None, before=None)  # always over the whole lines
    version = timeline_version(conn, q, admin=admin, viewer=viewer)
    cached = _changepoints.get(version)
    if cached is not None:
        return _with_alerts(conn, cached, admin=admin, viewer=viewer)
    if data is None or data["points"] != data["total"]:
        data = timeline(conn, q, admin=admin, viewer=viewer)
    answer = []
    for line in data["lines"]:
        values = np.asarray(line["y"], dtype=np.float64)
        found = []
        # Detection needs a value at every point; a line missing some is not analysed.
        if len(values) >= 8 and bool(np.isfinite(values).all()):
            found = [point.to_dict() for point in detect(values.tolist())]
        commits = (
            None
            if line["commit"] is not None
            else _commits(conn, [int(line["id"][c["index"]]) for c in found])
        )
        for change in found:
            index = change["index"]
            change["id"] = int(line["id"][index])
            change["commit"] = (
                line["commit"][index] if commits is None else (commits.get(change["id"]) or "")[:12]
            )
            change["t"] = float(line["t"][index])
        answer.append(
            {
                "label": line["label"],
                "series_ids": line["series_ids"],
                "machine_id": line["filter_machine_id"],
                "changepoints": found,
            }
        )
    _changepoints.put(version, answer)
    return _with_alerts(conn, answer, admin=admin, viewer=viewer)


def _with_alerts(
    conn: sa.Connection, lines: list[dict[str, Any]], *, admin: bool, viewer: int | None
) -> list[dict[str, Any]]:
    """Each line's open alerts beside its change points, read fresh: the detector raises
    alerts in the background, after the points they are about were stored."""
    a = t.alerts
    answer = []
    for line in lines:
        query = sa.select(
            a.c.id,
            a.c.kind,
            a.c.magnitude,
            a.c.state,
            a.c.run_after,
            a.c.commit_after,
            _epoch(conn, a.c.commit_time_after).label("t"),
        ).where(
            a.c.series_id.in_(line["series_ids"]),
            a.c.state.in_(("new", "acknowledged")),
        )
        if line["machine_id"] is not None:
            query = query.where(a.c.machine_id == line["machine_id"])
        if not admin:
            visible = sa.select(t.machines.c.id).where(
                visible_machines(t.machines, admin=admin, viewer=viewer)
            )
            query = query.where(a.c.machine_id.in_(visible.scalar_subquery()))
        found = [dict(row._mapping) for row in conn.execute(query.order_by(a.c.id))]
        answer.append({**line, "alerts": found})
    return answer


def series_choices(conn: sa.Connection, project: str | None, *, limit: int = 500) -> dict[str, Any]:
    """What a timeline can show: the series keys of a project (for the pickers)."""
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


# -- compare ----------------------------------------------------------------------------------


def _compare_side(
    conn: sa.Connection,
    run_id: str,
    *,
    admin: bool,
    viewer: int | None = None,
    results: bool = True,
) -> tuple[dict[str, Any], list[Result]]:
    """A run's header and its results, read from the results rows rather than the document.

    Parsing a whole document (attachments and all) costs more than comparing; the rows hold
    everything a comparison uses: key, unit, direction, samples and summary.
    """
    r, m, res = t.runs, t.machines, t.results
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
    side = {
        "id": head.id,
        "project": head.project,
        "machine": head.machine,
        "branch": head.branch,
        "commit": head.commit,
        "tag": head.tag,
        "started_at": _json_time(head.started_at),
    }
    if not results:
        return side, []
    rows = conn.execute(
        sa.select(
            res.c.benchmark,
            res.c.params,
            res.c.metric,
            res.c.unit,
            res.c.direction,
            res.c.samples,
            res.c.n,
            res.c.mean,
            res.c.median,
            res.c.stdev,
            res.c.min,
            res.c.max,
        )
        .where(res.c.run_id == run_id)
        .order_by(res.c.id)
    )
    # Plain attribute holders with what compare_runs reads, built straight from the rows'
    # tuples: the values were validated at ingest, and pydantic's model_construct costs
    # about half a millisecond per result here (two per result: 5 s for 5,000 results).
    directions = {d.value: d for d in Direction}
    fetched = rows.cursor.fetchall()  # type: ignore[union-attr]
    # One parse for every result's samples (a JSON array of arrays) instead of one per
    # result, and one per distinct params text: per-call overhead was most of the cost.
    all_samples = _loads("[" + ",".join(row[5] for row in fetched) + "]") if fetched else []
    params_of: dict[str, Any] = {}
    items = []
    for (
        benchmark,
        params,
        metric,
        unit,
        direction,
        _,
        n,
        mean,
        median,
        stdev,
        low,
        high,
    ), samples in zip(fetched, all_samples, strict=True):
        parsed_params = params_of.get(params)
        if parsed_params is None:
            parsed_params = params_of[params] = _loads(params)
        summary = SimpleNamespace(
            n=n,
            mean=mean,
            median=median,
            stdev=stdev,
            min=low,
            max=high,
            cv=None,
            mean_ci=None,
            median_ci=None,
            q1=None,
            q3=None,
            outliers=0,
            warnings=[],
        )
        items.append(
            SimpleNamespace(
                benchmark=benchmark,
                params=parsed_params,
                metric=metric,
                unit=unit,
                direction=directions[direction],
                samples=samples,
                summary=summary,
                warmup_samples=[],
                original_unit=None,
                measurement=None,
                extra={},
            )
        )
    return side, items


# A stored run never changes (ingest is idempotent on its id), so the comparison of two run
# ids stays true: a shared link opened again answers at once.
_comparisons = Lru(32)


def compare(
    conn: sa.Connection, a: str, b: str, *, admin: bool, viewer: int | None = None
) -> dict[str, Any]:
    """Every result of run ``b`` (contender) against run ``a`` (baseline)."""
    rows = _comparisons.get((a, b))
    need = rows is None
    with collector_paused():
        baseline, base_results = _compare_side(conn, a, admin=admin, viewer=viewer, results=need)
        contender, cont_results = _compare_side(conn, b, admin=admin, viewer=viewer, results=need)
        if rows is None:
            rows = []
            for item in compare_runs(
                SimpleNamespace(results=base_results),  # type: ignore[arg-type]
                SimpleNamespace(results=cont_results),  # type: ignore[arg-type]
            ):
                entry = item.to_dict()
                entry["name"] = item.name
                rows.append(entry)
            _comparisons.put((a, b), rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return {"baseline": baseline, "contender": contender, "rows": rows, "counts": counts}


COMPARE_PAGE = 100
COMPARE_SORTS = ("name", "baseline", "contender", "ratio", "verdict", "p")


@dataclass(frozen=True)
class CompareView:
    """Which rows of a comparison to show: filter, sort and page (the URL's parameters)."""

    q: str = ""
    verdict: str = ""
    sort: str = ""
    dir: str = "asc"
    page: int = 1
    per_page: int = COMPARE_PAGE


def _sort_value(row: dict[str, Any], key: str) -> Any:
    if key == "name":
        return row["name"].lower()
    if key == "verdict":
        return row["verdict"]
    c = row.get("comparison") or {}
    return c.get("p_value" if key == "p" else key)


def compare_page(view: dict[str, Any], shown: CompareView) -> dict[str, Any]:
    """One page of a comparison's rows, filtered and sorted over all of them.

    Done by the server, so that a page never carries thousands of rows of HTML and the
    address alone (``q``, ``verdict``, ``sort``, ``dir``, ``page``) reproduces a view.
    """
    if shown.sort and shown.sort not in COMPARE_SORTS:
        raise Invalid(f"sort: one of {', '.join(COMPARE_SORTS)}")
    if shown.dir not in ("asc", "desc"):
        raise Invalid("dir: asc or desc")
    words = shown.q.lower().split()
    rows = [
        row
        for row in view["rows"]
        if (not shown.verdict or row["verdict"] == shown.verdict)
        and all(word in row["name"].lower() for word in words)
    ]
    if shown.sort:
        # Rows without a number go last whichever the direction.
        present = [r for r in rows if _sort_value(r, shown.sort) is not None]
        missing = [r for r in rows if _sort_value(r, shown.sort) is None]
        present.sort(key=lambda r: _sort_value(r, shown.sort), reverse=shown.dir == "desc")
        rows = present + missing
    pages = max(1, -(-len(rows) // shown.per_page))
    page = min(max(1, shown.page), pages)
    start = (page - 1) * shown.per_page
    return {
        **{k: v for k, v in view.items() if k != "rows"},
        "rows": rows[start : start + shown.per_page],
        "total": len(view["rows"]),
        "matched": len(rows),
        "page": page,
        "pages": pages,
        "per_page": shown.per_page,
        "first": start + 1 if rows else 0,
        "shown": {
            "q": shown.q,
            "verdict": shown.verdict,
            "sort": shown.sort,
            "dir": shown.dir,
        },
    }


def latest_run_of(
    conn: sa.Connection,
    *,
    admin: bool,
    viewer: int | None = None,
    project: str | None,
    branch: str | None = None,
    commit: str | None = None,
    machine: str | None = None,
) -> str:
    """The newest run matching; how the compare page turns commits or branches into runs."""
    runs, _ = run_store.list_runs(
        conn,
        run_store.RunFilter(project=project, branch=branch, commit=commit, machine=machine),
        admin=admin,
        cursor=None,
        limit=1,
        viewer=viewer,
    )
    if not runs:
        what = ", ".join(
            f"{k} {v}"
            for k, v in (
                ("project", project),
                ("branch", branch),
                ("commit", commit),
                ("machine", machine),
            )
            if v
        )
        raise NotFound(f"no run with {what}")
    return runs[0].id


# -- load tests -------------------------------------------------------------------------------


def loadtests_list(store: Any, limit: int = 200) -> dict[str, Any]:
    """Load tests, newest first (``store``: the server's load-test store, issue 9)."""
    return {"tests": [info.model_dump(mode="json") for info in store.list(limit)]}


def loadtest_page(store: Any, test_id: str) -> dict[str, Any]:
    """One load test; a finished one with its kept summary (thresholds and verdict)."""
    row = store.row(test_id)
    if row is None:
        raise NotFound(f"no load test {test_id!r}")
    summary = json.loads(row.summary) if row.finished is not None and row.summary else None
    return {"test": store.info(row).model_dump(mode="json"), "summary": summary}
