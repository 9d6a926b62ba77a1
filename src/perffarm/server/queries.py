"""Read side of the API: every listing is a keyset page, never the whole table.

One visibility rule everywhere (``visible`` / ``can_see``): runs and results of approved
machines are shown to everybody; those of a machine not approved yet only to its owner (the
signed-in user it belongs to, ``viewer``) and to admins.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from perffarm.model import canonical_params
from perffarm.model.api import ProbeFigures, ResultRow, RunSummary
from perffarm.server.db import tables as t
from perffarm.server.ingest import series_key
from perffarm.server.timeutil import iso, to_db, utc

MAX_PAGE = 1000


class BadQuery(ValueError):
    """A query parameter that cannot be used; the message names it."""


class NotFound(LookupError):
    pass


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadQuery("cursor: not a cursor this server gave out") from None
    if not isinstance(values, list) or len(values) != size:
        raise BadQuery("cursor: not a cursor this server gave out")
    return values


def _time(value: Any, name: str) -> datetime:
    try:
        return to_db(datetime.fromisoformat(str(value)))  # type: ignore[return-value]
    except (ValueError, OverflowError):
        raise BadQuery(f"{name}: not an ISO 8601 time in range") from None


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadQuery(f"{name}: not a cursor this server gave out")
    return value


def _probe(text: str | None) -> ProbeFigures | None:
    return ProbeFigures.model_validate_json(text) if text else None


@dataclass(frozen=True)
class RunFilter:
    project: str | None = None
    machine: str | None = None
    owner: str | None = None
    branch: str | None = None
    commit: str | None = None
    tag: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _visible(m: sa.Table, viewer: int | None) -> sa.ColumnElement[bool]:
    """Approved machines, and the viewer's own machines while they wait for approval."""
    if viewer is None:
        return m.c.approved.is_(True)
    return sa.or_(m.c.approved.is_(True), m.c.owner_user_id == viewer)


def visible(m: sa.Table, *, admin: bool, viewer: int | None) -> sa.ColumnElement[bool]:
    """The machines whose runs the caller may see, as a WHERE clause on ``machines``."""
    return sa.true() if admin else _visible(m, viewer)


def can_see(approved: bool, owner_user_id: int | None, *, admin: bool, viewer: int | None) -> bool:
    """``visible`` for one machine row already read."""
    return admin or bool(approved) or (viewer is not None and owner_user_id == viewer)


def list_runs(
    conn: sa.Connection,
    flt: RunFilter,
    *,
    admin: bool,
    cursor: str | None,
    limit: int,
    viewer: int | None = None,
) -> tuple[list[RunSummary], str | None]:
    r, m = t.runs, t.machines
    query = sa.select(
        r.c.id,
        r.c.project,
        m.c.name.label("machine"),
        m.c.owner,
        m.c.approved,
        r.c.tag,
        r.c.status,
        r.c.branch,
        r.c.commit,
        r.c.commit_time,
        r.c.started_at,
        r.c.finished_at,
        r.c.received_at,
        r.c.fingerprint,
        r.c.result_count,
        r.c.sha256,
        r.c.probe,
    ).join(m, m.c.id == r.c.machine_id)
    for column, value in (
        (r.c.project, flt.project),
        (m.c.name, flt.machine),
        (m.c.owner, flt.owner),
        (r.c.branch, flt.branch),
        (r.c.commit, flt.commit),
        (r.c.tag, flt.tag),
        (r.c.status, flt.status),
    ):
        if value is not None:
            query = query.where(column == value)
    if flt.since is not None:
        query = query.where(r.c.started_at >= _time(flt.since.isoformat(), "since"))
    if flt.until is not None:
        query = query.where(r.c.started_at < _time(flt.until.isoformat(), "until"))
    if not admin:
        query = query.where(_visible(m, viewer))
    if cursor:
        started, run_id = decode_cursor(cursor, 2)
        started = _time(started, "cursor")
        query = query.where(
            sa.or_(
                r.c.started_at < started, sa.and_(r.c.started_at == started, r.c.id < str(run_id))
            )
        )
    query = query.order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit + 1)
    rows = conn.execute(query).all()
    items = [
        RunSummary(
            id=row.id,
            project=row.project,
            machine=row.machine,
            owner=row.owner,
            tag=row.tag,
            status=row.status,
            branch=row.branch,
            commit=row.commit,
            commit_time=utc(row.commit_time),
            started_at=utc(row.started_at),
            finished_at=utc(row.finished_at),
            received_at=utc(row.received_at),
            fingerprint=row.fingerprint,
            result_count=row.result_count,
            sha256=row.sha256,
            hidden=not row.approved,
            probe=_probe(row.probe),
        )
        for row in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([utc(last.started_at).isoformat(), last.id])
    return items, next_cursor


def run_document(
    conn: sa.Connection, run_id: str, *, admin: bool, viewer: int | None = None
) -> str:
    row = conn.execute(
        sa.select(t.runs.c.document, t.machines.c.approved, t.machines.c.owner_user_id)
        .join(t.machines, t.machines.c.id == t.runs.c.machine_id)
        .where(t.runs.c.id == run_id)
    ).first()
    if row is None or not can_see(row.approved, row.owner_user_id, admin=admin, viewer=viewer):
        raise NotFound(f"no run {run_id}")
    return row.document


def attachment(
    conn: sa.Connection, run_id: str, name: str, *, admin: bool, viewer: int | None = None
) -> tuple[bytes, str]:
    document = json.loads(run_document(conn, run_id, admin=admin, viewer=viewer))
    for item in document.get("attachments") or []:
        if item.get("name") == name:
            return base64.b64decode(item["content"]), item.get("media_type") or (
                "application/octet-stream"
            )
    raise NotFound(f"run {run_id} has no attachment {name!r}")


def parse_params(text: str | None) -> str:
    if text is None or text == "":
        return canonical_params({})
    try:
        value = json.loads(text)
    except ValueError:
        raise BadQuery('params: not JSON; give an object such as {"clients": 4}') from None
    if not isinstance(value, dict):
        raise BadQuery('params: give a JSON object such as {"clients": 4}')
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
        .where(res.c.series_id.in_(series_ids))
    )
    if machine_id is not None:
        query = query.where(res.c.machine_id == machine_id)
    if not admin:
        query = query.where(_visible(m, viewer))
    if cursor:
        at, last_id = decode_cursor(cursor, 2)
        at = _time(at, "cursor")
        last_id = _int(last_id, "cursor")
        query = query.where(
            sa.or_(res.c.commit_time > at, sa.and_(res.c.commit_time == at, res.c.id > last_id))
        )
    query = query.order_by(res.c.commit_time, res.c.id).limit(limit + 1)
    rows = conn.execute(query).all()
    # Plain dicts rather than models: a series page holds up to thousands of points, and
    # building models row by row costs more than the indexed query itself. The shape is
    # SeriesPoint's (the API schema), which the tests check.
    points = []
    for row in rows[:limit]:
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
            fingerprint,
            machine,
        ) = row
        points.append(
            {
                "run_id": run_id,
                "commit": commit,
                "commit_time": iso(commit_time),
                "branch": branch,
                "machine": machine,
                "fingerprint": fingerprint,
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
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([utc(last.order_time).isoformat(), last.id])
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
    if not admin:
        query = query.where(_visible(m, viewer))
    if cursor:
        (last_id,) = decode_cursor(cursor, 1)
        query = query.where(res.c.id > _int(last_id, "cursor"))
    rows = conn.execute(query.order_by(res.c.id).limit(limit + 1)).all()
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
        for row in rows[:limit]
    ]
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return items, next_cursor
