"""Reading runs: the listing (a keyset page, newest first), one whole document, one
attachment. Every read follows the visibility rule (``store/visibility.py``)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from perffarm.model.api import ProbeFigures, RunSummary
from perffarm.server.core.errors import NotFound
from perffarm.server.core.paging import cursor_text, decode_cursor, page_of, query_time
from perffarm.server.core.timeutil import utc
from perffarm.server.core.visibility import can_see
from perffarm.server.store import tables as t
from perffarm.server.store.visibility import visible


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


def _probe(text: str | None) -> ProbeFigures | None:
    return ProbeFigures.model_validate_json(text) if text else None


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
        r.c.keep,
        r.c.samples_removed_at,
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
        query = query.where(r.c.started_at >= query_time(flt.since.isoformat(), "since"))
    if flt.until is not None:
        query = query.where(r.c.started_at < query_time(flt.until.isoformat(), "until"))
    query = query.where(visible(m, admin=admin, viewer=viewer))
    if cursor:
        started, run_id = decode_cursor(cursor, 2)
        started = query_time(started, "cursor")
        run_id = cursor_text(run_id)
        query = query.where(
            sa.or_(r.c.started_at < started, sa.and_(r.c.started_at == started, r.c.id < run_id))
        )
    query = query.order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit + 1)
    rows, next_cursor = page_of(
        conn.execute(query).all(),
        limit,
        lambda row: (utc(row.started_at).isoformat(), row.id),
    )
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
            keep=bool(row.keep),
            summary_only=row.samples_removed_at is not None,
        )
        for row in rows
    ]
    return items, next_cursor


def run_document(
    conn: sa.Connection, run_id: str, *, admin: bool, viewer: int | None = None
) -> str:
    """The run document as stored; NotFound when there is none the caller may see."""
    row = conn.execute(
        sa.select(t.runs.c.document, t.machines.c.approved, t.machines.c.owner_user_id)
        .join(t.machines, t.machines.c.id == t.runs.c.machine_id)
        .where(t.runs.c.id == run_id)
    ).first()
    if row is None or not can_see(row.approved, row.owner_user_id, admin=admin, viewer=viewer):
        raise NotFound(f"no run {run_id}")
    return str(row.document)


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
