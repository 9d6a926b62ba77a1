"""The timeline: one series (or several overlaid) as columns, in pieces for a long line,
with its change points and open alerts; kept in memory while the lines are unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sqlalchemy as sa

from perffarm.analysis.changepoint import detect
from perffarm.server.core.errors import Invalid
from perffarm.server.core.paging import cursor_int, decode_cursor, encode_cursor
from perffarm.server.store import results as result_store
from perffarm.server.store import timeline as store
from perffarm.web.cache import SharedLru
from perffarm.web.encode import to_json
from perffarm.web.views import Reader

# A timeline draws at most this many points per line: uPlot stays smooth well beyond it, and
# the answer stays a few megabytes.
MAX_TIMELINE_POINTS = 200_000
MAX_LINES = store.MAX_LINES
# Lines up to this many points carry every point's commit; longer ones leave it out.
COMMITS_INLINE = 20_000
# Series keys the timeline's picker lists at most.
CHOICES = 500


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


def _lines(read: Reader, q: TimelineQuery) -> list[store.Line]:
    return store.lines(
        read.conn,
        project=q.project,
        benchmark=q.benchmark,
        metric=q.metric,
        params=result_store.parse_params(q.params),
        machines=q.machines,
        branches=q.branches,
        admin=read.admin,
        viewer=read.viewer,
    )


def timeline(read: Reader, q: TimelineQuery) -> dict[str, Any]:
    """Every line of the chart as columns (numpy arrays), not one object per point.

    Columns keep a 100,000-point answer a few megabytes and let the browser hand the arrays
    to the chart as they are. With ``q.limit`` each line holds its newest ``limit`` points
    (before ``q.before``), ``offset`` says where they start in the whole line (``total``
    points), and ``next_cursor`` asks for the points before them (null: nothing is left).
    """
    conn, admin, viewer = read.conn, read.admin, read.viewer
    found = _lines(read, q)
    # Per line: None (no point to show), 0 (all given already), or where to go on:
    # [time, id of the oldest point given, points given, total, its one machine or 0]. The
    # cursor carries the line's total, so a later piece reads only its own points.
    afters: list[Any]
    if q.before:
        afters = decode_cursor(q.before, len(found))
        for after in afters:
            if not (after in (None, 0) or (isinstance(after, list) and len(after) == 5)):
                raise Invalid("before: not a cursor this server gave out")
    else:
        stats = [store.line_stats(conn, line, admin=admin, viewer=viewer) for line in found]
        afters = [[None, 0, 0, total, machine] if total else None for total, machine in stats]
    lines: list[dict[str, Any]] = []
    cursor: list[Any] = []
    for found_line, after in zip(found, afters, strict=True):
        if after is None:
            cursor.append(None)
            continue
        given = 0
        start = None
        if after == 0:  # finished: an empty piece keeps the lines in their places
            total, machine_id = 0, found_line["machine_id"] or 0
        else:
            at, last, given, total, machine_id = after
            for value in (last, given, total, machine_id):
                cursor_int(value, "before")
            start = (at, last) if at is not None else None
            if start is None:
                given = 0
        # Looking up each point's commit in the runs table doubles the cost of a long line;
        # past COMMITS_INLINE points the page asks for the commit of the point it hovers.
        columns = store.line_columns(
            conn,
            found_line,
            admin=admin,
            viewer=viewer,
            machine_id=machine_id or (found_line["machine_id"] or 0),
            with_commits=total <= COMMITS_INLINE if q.commits is None else q.commits,
            limit=0 if after == 0 else q.limit,
            max_points=MAX_TIMELINE_POINTS,
            after=start,
        )
        columns["total"] = total
        columns["offset"] = max(0, total - given - len(columns["id"]))
        if columns["offset"] > 0 and len(columns["id"]):
            oldest = int(columns["id"][0])
            at = store.commit_time(conn, oldest).isoformat()
            cursor.append([at, oldest, total - columns["offset"], total, machine_id])
        else:
            cursor.append(0)
        lines.append({**found_line, **columns})
    # Unit and direction: those of the line's newest point given.
    for line in lines:
        unit, direction = (
            store.unit_and_direction(conn, int(line["id"][-1])) if len(line["id"]) else (None, None)
        )
        line["unit"] = unit
        line["direction"] = direction
    ids = {int(mid) for line in lines for mid in np.unique(line["machine_ids"])}
    names = store.machine_names(conn, ids)
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


# Keyed by ``timeline_version``: what the lines hold now. Results are only ever added (with
# a larger id), so a line whose largest possible id is unchanged has the same points. A
# 100,000-point timeline takes a few hundred milliseconds to read and seconds to analyse;
# viewed again it answers from here. Bytes, not lists, to keep each entry a few megabytes.
_timelines: SharedLru[bytes] = SharedLru(32)
_changepoints: SharedLru[list[dict[str, Any]]] = SharedLru(64)


def timeline_version(read: Reader, q: TimelineQuery) -> tuple[Any, ...]:
    """What a timeline answer depends on, in a few index lookups (``store.line_mark``)."""
    marks = tuple(
        (tuple(line["series_ids"]), line["machine_id"], store.line_mark(read.conn, line))
        for line in _lines(read, q)
    )
    # Approving a machine changes what everybody sees, and its owner sees it before.
    shown = (
        ()
        if read.admin
        else store.visible_machine_ids(read.conn, admin=read.admin, viewer=read.viewer)
    )
    return (q, read.admin, marks, shown)


def timeline_json(read: Reader, q: TimelineQuery) -> bytes:
    """``timeline`` as JSON bytes, from the cache while the lines are unchanged.

    A later piece of a long line (``q.before``) is read as it is: it costs no more than
    finding out whether it changed would.
    """
    if q.before:
        return to_json(timeline(read, q))
    version = timeline_version(read, q)
    cached = _timelines.get(version)
    if cached is None:
        cached = to_json(timeline(read, q))
        _timelines.put(version, cached)
    return cached


def changepoints(
    read: Reader, q: TimelineQuery, data: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Change points of each line (same order as ``timeline``'s lines), by point index,
    with each line's open alerts. ``data``: the whole timeline, when already read."""
    q = replace(q, limit=None, before=None)  # always over the whole lines
    version = timeline_version(read, q)
    cached = _changepoints.get(version)
    if cached is not None:
        return _with_alerts(read, cached)
    if data is None or data["points"] != data["total"]:
        data = timeline(read, q)
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
            else store.commits(read.conn, [int(line["id"][c["index"]]) for c in found])
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
    return _with_alerts(read, answer)


def _with_alerts(read: Reader, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each line's open alerts beside its change points, read fresh: the detector raises
    alerts in the background, after the points they are about were stored."""
    return [
        {
            **line,
            "alerts": store.open_alerts(
                read.conn,
                line["series_ids"],
                line["machine_id"],
                admin=read.admin,
                viewer=read.viewer,
            ),
        }
        for line in lines
    ]


@dataclass(frozen=True)
class TimelineData:
    """What the timeline's twin is asked: the lines and points, and whether to add their
    change points."""

    query: TimelineQuery
    changepoints: bool = True


def data(read: Reader, ask: TimelineData) -> bytes | dict[str, Any]:
    """The timeline's lines as columns: result id, epoch seconds, value, spread, commit.

    Each line also says how many points it has in all (``total``) and where the points
    given start among them (``offset``).
    """
    if not ask.changepoints:
        return timeline_json(read, ask.query)
    answer = timeline(read, ask.query)
    answer["changepoints"] = changepoints(read, ask.query, data=answer)
    return answer


def changepoint_lines(read: Reader, q: TimelineQuery) -> dict[str, Any]:
    """Change points of each timeline line (``perffarm.analysis.changepoint.detect``)."""
    return {"lines": changepoints(read, q)}


def result(read: Reader, result_id: int) -> dict[str, Any]:
    """One result with its run's commit, machine and spread (a timeline point's details)."""
    return store.result_detail(read.conn, result_id, admin=read.admin, viewer=read.viewer)


def series_choices(conn: sa.Connection, project: str | None) -> dict[str, Any]:
    """The timeline picker's data: series keys (of one project) and branches."""
    # Series keys name no machine: every caller gets them (the pickers of the timeline).
    return store.series_choices(conn, project, limit=CHOICES)
