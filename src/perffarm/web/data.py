"""What each page shows, as plain data: the page renders it and its JSON twin returns it.

Both callers go through these functions, so a page and its twin cannot disagree. They build
on ``perffarm.server.queries`` (runs, documents, series lookups) and add the few reads only
the dashboard needs (projects, owners, a whole series as columns).
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pydantic_core
import sqlalchemy as sa

from perffarm.analysis.changepoint import detect
from perffarm.analysis.compare import compare_runs
from perffarm.model import Direction, Result, RunDocument, Summary
from perffarm.server import machines as machines_module
from perffarm.server import queries
from perffarm.server.db import tables as t
from perffarm.server.timeutil import utc

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


def projects(conn: sa.Connection, *, admin: bool) -> list[dict[str, Any]]:
    """Each project with its number of runs and its latest run's start."""
    r, m = t.runs, t.machines
    query = (
        sa.select(
            r.c.project,
            sa.func.count().label("runs"),
            sa.func.max(r.c.started_at).label("latest"),
        )
        .join(m, m.c.id == r.c.machine_id)
        .group_by(r.c.project)
        .order_by(r.c.project)
    )
    if not admin:
        query = query.where(m.c.approved.is_(True))
    return [
        {"project": row.project, "runs": row.runs, "latest": _json_time(row.latest)}
        for row in conn.execute(query)
    ]


def open_alerts(
    conn: sa.Connection, *, admin: bool, limit: int = 20
) -> list[dict[str, Any]] | None:
    """Alerts not dealt with yet (new or acknowledged), newest first; None without alerts."""
    try:
        from perffarm.server import alerts
    except ImportError:  # a server built before alerts (issue 6): the page says so
        return None
    found = []
    for state in ("new", "acknowledged"):
        items, _ = alerts.list_alerts(
            conn, project=None, state=state, branch=None, admin=admin, cursor=None, limit=limit
        )
        found += items
    found.sort(key=lambda alert: alert["id"], reverse=True)
    return found[:limit]


def home(conn: sa.Connection, *, admin: bool) -> dict[str, Any]:
    runs, _ = queries.list_runs(
        conn, queries.RunFilter(), admin=admin, cursor=None, limit=LATEST_RUNS
    )
    machines, _ = machines_module.listing(conn, admin=admin, owner=None, after=None, limit=1000)
    return {
        "projects": projects(conn, admin=admin),
        "latest_runs": [run.model_dump(mode="json") for run in runs],
        "machines": [_machine_row(info.model_dump(mode="json")) for info in machines],
        "alerts": open_alerts(conn, admin=admin),
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


def machines_list(conn: sa.Connection, *, admin: bool) -> dict[str, Any]:
    items, _ = machines_module.listing(conn, admin=admin, owner=None, after=None, limit=1000)
    return {"machines": [_machine_row(info.model_dump(mode="json")) for info in items]}


def machine_page(conn: sa.Connection, name: str, *, admin: bool) -> dict[str, Any]:
    """One machine, its fingerprint changes and its latest runs; NotFound when hidden."""
    try:
        info = machines_module.get(conn, name, admin=admin)
    except machines_module.MachineNotFound:
        raise queries.NotFound(f"no machine named {name!r}") from None
    runs, next_cursor = queries.list_runs(
        conn, queries.RunFilter(machine=name), admin=admin, cursor=None, limit=100
    )
    return {
        "machine": _machine_row(info.model_dump(mode="json")),
        "runs": [run.model_dump(mode="json") for run in runs],
        "more_runs": next_cursor is not None,
    }


# -- people -----------------------------------------------------------------------------------


def owners(conn: sa.Connection, *, admin: bool) -> list[dict[str, Any]]:
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
        .group_by(m.c.owner)
        .order_by(m.c.owner)
    )
    if not admin:
        query = query.where(m.c.approved.is_(True))
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
    conn: sa.Connection, owner: str | None, *, admin: bool, cursor: str | None, limit: int = 200
) -> dict[str, Any]:
    """One owner's results (``owner=None``: everybody's), newest stored last, one page."""
    items, next_cursor = queries.list_results(
        conn,
        queries.ResultFilter(owner=owner),
        admin=admin,
        cursor=cursor,
        limit=limit,
        samples=False,
    )
    machines = []
    if owner is not None:
        listed, _ = machines_module.listing(conn, admin=admin, owner=owner, after=None, limit=1000)
        machines = [_machine_row(info.model_dump(mode="json")) for info in listed]
    return {
        "owner": owner,
        "machines": machines,
        "results": [item.model_dump(mode="json") for item in items],
        "next_cursor": next_cursor,
    }


# -- one run ----------------------------------------------------------------------------------


def run_page(conn: sa.Connection, run_id: str, *, admin: bool) -> dict[str, Any]:
    """The stored document plus what the server knows beside it; NotFound when hidden."""
    text = queries.run_document(conn, run_id, admin=admin)
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
    previous, _ = queries.list_runs(
        conn,
        queries.RunFilter(
            project=document["project"],
            machine=row.name,
            branch=(document.get("source") or {}).get("branch"),
            until=datetime.fromisoformat(document["started_at"].replace("Z", "+00:00")),
        ),
        admin=admin,
        cursor=None,
        limit=1,
    )
    return {
        "document": document,
        "machine": row.name,
        "owner": row.owner,
        "received_at": _json_time(row.received_at),
        "previous_run": previous[0].id if previous else None,
    }


def result_run(conn: sa.Connection, result_id: int, *, admin: bool) -> str:
    """The run a stored result belongs to (a timeline point links through it)."""
    query = (
        sa.select(t.results.c.run_id)
        .join(t.machines, t.machines.c.id == t.results.c.machine_id)
        .where(t.results.c.id == result_id)
    )
    if not admin:
        query = query.where(t.machines.c.approved.is_(True))
    run_id = conn.execute(query).scalar()
    if run_id is None:
        raise queries.NotFound(f"no result {result_id}")
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


def _epoch(conn: sa.Connection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    # Seconds since 1970, to the millisecond, computed by the database: converting 100,000
    # datetimes in Python would cost more than the whole query.
    if conn.dialect.name == "sqlite":
        return sa.func.round((sa.func.julianday(column) - 2440587.5) * 86400.0, 3)
    return sa.cast(sa.func.round(sa.extract("epoch", column), 3), sa.Float)


def _lines(conn: sa.Connection, q: TimelineQuery, *, admin: bool) -> list[dict[str, Any]]:
    """The series rows to draw: one line per (fingerprint, branch), or per machine given."""
    params = queries.parse_params(q.params)
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
                sa.select(m.c.id, m.c.fingerprint, m.c.approved).where(m.c.name == name)
            ).first()
            if row is None or (not row.approved and not admin):
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


def _line_columns(
    conn: sa.Connection, line: dict[str, Any], *, admin: bool, commits: bool | None
) -> dict[str, Any]:
    res, r, m = t.results, t.runs, t.machines
    where = [res.c.series_id.in_(line["series_ids"])]
    if line["machine_id"] is not None:
        where.append(res.c.machine_id == line["machine_id"])
    if not admin:
        visible = sa.select(m.c.id).where(m.c.approved.is_(True)).scalar_subquery()
        where.append(res.c.machine_id.in_(visible))
    # Looking up each point's commit in the runs table doubles the cost of a long line; past
    # COMMITS_INLINE points the page asks for the commit of the point it hovers instead.
    with_commits = commits
    if with_commits is None:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(res)
            .where(res.c.series_id.in_(line["series_ids"]))
        ).scalar_one()
        with_commits = count <= COMMITS_INLINE
    columns: list[sa.ColumnElement[Any]] = [
        res.c.id,
        _epoch(conn, res.c.commit_time),
        sa.func.coalesce(res.c.median, res.c.mean),
        sa.func.coalesce(res.c.ci_low, res.c.min),
        sa.func.coalesce(res.c.ci_high, res.c.max),
        res.c.machine_id,
    ]
    query = sa.select(*columns)
    if with_commits:
        query = sa.select(*columns, sa.func.substr(r.c.commit, 1, 12)).join(
            r, r.c.id == res.c.run_id
        )
    query = query.where(*where).order_by(res.c.commit_time, res.c.id).limit(MAX_TIMELINE_POINTS)
    # Straight from the driver's cursor: these columns need no conversion, and SQLAlchemy's
    # row objects would cost as much as the query.
    rows = conn.execute(query).cursor.fetchall()
    # Columns through numpy: transposing 100,000 rows this way takes half the time of zip().
    # Missing values become NaN here and null in the JSON (see _to_json).
    numbers = np.array([row[:6] for row in rows] if with_commits else rows, dtype=np.float64)
    numbers = numbers.reshape(len(rows), 6)
    ids, machine_ids = (numbers[:, k].astype(np.int64).tolist() for k in (0, 5))
    times, values, low, high = (numbers[:, k].tolist() for k in (1, 2, 3, 4))
    first = conn.execute(
        sa.select(res.c.unit, res.c.direction).where(*where).order_by(res.c.id).limit(1)
    ).first()
    return {
        "id": list(ids),
        "t": list(times),
        "y": list(values),
        "lo": list(low),
        "hi": list(high),
        "commit": [row[6] for row in rows] if with_commits else None,
        "machine_ids": list(machine_ids),
        "unit": first.unit if first else None,
        "direction": first.direction if first else None,
    }


def result_detail(conn: sa.Connection, result_id: int, *, admin: bool) -> dict[str, Any]:
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
        )
        .join(r, r.c.id == res.c.run_id)
        .join(m, m.c.id == res.c.machine_id)
        .where(res.c.id == result_id)
    )
    row = conn.execute(query).first()
    if row is None or (not row.approved and not admin):
        raise queries.NotFound(f"no result {result_id}")
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


def timeline(conn: sa.Connection, q: TimelineQuery, *, admin: bool) -> dict[str, Any]:
    """Every line of the chart as columns (arrays), not one object per point.

    Columns keep a 100,000-point answer a few megabytes and let the browser hand the arrays
    to the chart as they are.
    """
    lines = []
    for line in _lines(conn, q, admin=admin):
        columns = _line_columns(conn, line, admin=admin, commits=q.commits)
        if not columns["id"]:
            continue
        lines.append({**line, **columns})
    names = _machine_names(conn, {mid for line in lines for mid in set(line["machine_ids"])})
    for line in lines:
        # Machines per point as indexes into one short list of names.
        present = sorted(set(line["machine_ids"]))
        line["machines"] = [names.get(mid, "?") for mid in present]
        position = {mid: index for index, mid in enumerate(present)}
        line["machine_index"] = [position[mid] for mid in line.pop("machine_ids")]
        if line["machine"] is None and len(line["machines"]) == 1:
            line["machine"] = line["machines"][0]
        line["label"] = (
            f"{line['machine'] or line['fingerprint'][:12] or '?'} · {line['branch'] or '-'}"
        )
        # The series behind the line, for the alerts drawn on it (see _with_alerts).
        line["series_ids"] = line.pop("series_ids")
        line["filter_machine_id"] = line.pop("machine_id")
    return {
        "query": {
            "project": q.project,
            "benchmark": q.benchmark,
            "metric": q.metric,
            "params": json.loads(queries.parse_params(q.params)),
            "machines": list(q.machines),
            "branches": list(q.branches),
            "x": q.x,
        },
        "lines": lines,
        "points": sum(len(line["id"]) for line in lines),
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
_timelines = Lru(8)
_changepoints = Lru(64)


def to_json(value: Any) -> bytes:
    """JSON bytes, fast (pydantic-core), with NaN (a missing value) written as null."""
    return pydantic_core.to_json(value, inf_nan_mode="null")


def timeline_version(conn: sa.Connection, q: TimelineQuery, *, admin: bool) -> tuple[Any, ...]:
    """What a timeline answer depends on, read from the series index alone (cheap)."""
    res = t.results
    parts = []
    for line in _lines(conn, q, admin=admin):
        count, last = conn.execute(
            sa.select(sa.func.count(), sa.func.max(res.c.id)).where(
                res.c.series_id.in_(line["series_ids"])
            )
        ).one()
        parts.append((tuple(line["series_ids"]), line["machine_id"], count, last))
    # Approving a machine changes what everybody sees.
    approved = (
        ()
        if admin
        else tuple(
            conn.execute(
                sa.select(t.machines.c.id)
                .where(t.machines.c.approved.is_(True))
                .order_by(t.machines.c.id)
            ).scalars()
        )
    )
    return (q, admin, tuple(parts), approved)


def timeline_json(conn: sa.Connection, q: TimelineQuery, *, admin: bool) -> bytes:
    """``timeline`` as JSON bytes, from the cache while the lines are unchanged."""
    version = timeline_version(conn, q, admin=admin)
    cached = _timelines.get(version)
    if cached is None:
        cached = to_json(timeline(conn, q, admin=admin))
        _timelines.put(version, cached)
    return cached


def timeline_changepoints(
    conn: sa.Connection, q: TimelineQuery, *, admin: bool, data: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Change points of each line (same order as ``timeline``'s lines), by point index."""
    version = timeline_version(conn, q, admin=admin)
    cached = _changepoints.get(version)
    if cached is not None:
        return _with_alerts(conn, cached, admin=admin)
    data = data if data is not None else timeline(conn, q, admin=admin)
    answer = []
    for line in data["lines"]:
        values = line["y"]
        found = []
        # Detection needs a value at every point; a line missing some is not analysed.
        if len(values) >= 8 and all(math.isfinite(v) for v in values):
            found = [point.to_dict() for point in detect(values)]
        commits = (
            None
            if line["commit"] is not None
            else _commits(conn, [line["id"][c["index"]] for c in found])
        )
        for change in found:
            index = change["index"]
            change["id"] = line["id"][index]
            change["commit"] = (
                line["commit"][index] if commits is None else (commits.get(change["id"]) or "")[:12]
            )
            change["t"] = line["t"][index]
        answer.append(
            {
                "label": line["label"],
                "series_ids": line["series_ids"],
                "machine_id": line["filter_machine_id"],
                "changepoints": found,
            }
        )
    _changepoints.put(version, answer)
    return _with_alerts(conn, answer, admin=admin)


def _with_alerts(
    conn: sa.Connection, lines: list[dict[str, Any]], *, admin: bool
) -> list[dict[str, Any]]:
    """Each line's open alerts beside its change points, read fresh: the detector raises
    alerts in the background, after the points they are about were stored."""
    alerts = getattr(t, "alerts", None)  # the alerts table comes with issue 6
    answer = []
    for line in lines:
        found: list[dict[str, Any]] = []
        if alerts is not None:
            query = sa.select(
                alerts.c.id,
                alerts.c.kind,
                alerts.c.magnitude,
                alerts.c.state,
                alerts.c.run_after,
                alerts.c.commit_after,
                _epoch(conn, alerts.c.commit_time_after).label("t"),
            ).where(
                alerts.c.series_id.in_(line["series_ids"]),
                alerts.c.state.in_(("new", "acknowledged")),
            )
            if line["machine_id"] is not None:
                query = query.where(alerts.c.machine_id == line["machine_id"])
            if not admin:
                visible = sa.select(t.machines.c.id).where(t.machines.c.approved.is_(True))
                query = query.where(alerts.c.machine_id.in_(visible.scalar_subquery()))
            found = [dict(row._mapping) for row in conn.execute(query.order_by(alerts.c.id))]
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
    conn: sa.Connection, run_id: str, *, admin: bool, results: bool = True
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
        )
        .join(m, m.c.id == r.c.machine_id)
        .where(r.c.id == run_id)
    ).first()
    if head is None or (not head.approved and not admin):
        raise queries.NotFound(f"no run {run_id}")
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
    # Built without validation: these values were validated at ingest.
    items = [
        Result.model_construct(
            benchmark=row.benchmark,
            params=json.loads(row.params),
            metric=row.metric,
            unit=row.unit,
            direction=Direction(row.direction),
            samples=json.loads(row.samples),
            summary=Summary.model_construct(
                n=row.n,
                mean=row.mean,
                median=row.median,
                stdev=row.stdev,
                min=row.min,
                max=row.max,
            ),
        )
        for row in rows
    ]
    return side, items


# A stored run never changes (ingest is idempotent on its id), so the comparison of two run
# ids stays true: a shared link opened again answers at once.
_comparisons = Lru(32)


def compare(conn: sa.Connection, a: str, b: str, *, admin: bool) -> dict[str, Any]:
    """Every result of run ``b`` (contender) against run ``a`` (baseline)."""
    rows = _comparisons.get((a, b))
    baseline, base_results = _compare_side(conn, a, admin=admin, results=rows is None)
    contender, cont_results = _compare_side(conn, b, admin=admin, results=rows is None)
    if rows is None:
        rows = []
        for item in compare_runs(
            RunDocument.model_construct(results=base_results),
            RunDocument.model_construct(results=cont_results),
        ):
            entry = item.to_dict()
            entry["name"] = item.name
            rows.append(entry)
        _comparisons.put((a, b), rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return {"baseline": baseline, "contender": contender, "rows": rows, "counts": counts}


def latest_run_of(
    conn: sa.Connection,
    *,
    admin: bool,
    project: str | None,
    branch: str | None = None,
    commit: str | None = None,
    machine: str | None = None,
) -> str:
    """The newest run matching; how the compare page turns commits or branches into runs."""
    runs, _ = queries.list_runs(
        conn,
        queries.RunFilter(project=project, branch=branch, commit=commit, machine=machine),
        admin=admin,
        cursor=None,
        limit=1,
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
        raise queries.NotFound(f"no run with {what}")
    return runs[0].id


# -- load tests -------------------------------------------------------------------------------


def loadtests_list(store: Any, limit: int = 200) -> dict[str, Any]:
    """Load tests, newest first (``store``: the server's load-test store, issue 9)."""
    return {"tests": [info.model_dump(mode="json") for info in store.list(limit)]}


def loadtest_page(store: Any, test_id: str) -> dict[str, Any]:
    """One load test; a finished one with its kept summary (thresholds and verdict)."""
    row = store.row(test_id)
    if row is None:
        raise queries.NotFound(f"no load test {test_id!r}")
    summary = json.loads(row.summary) if row.finished is not None and row.summary else None
    return {"test": store.info(row).model_dump(mode="json"), "summary": summary}
