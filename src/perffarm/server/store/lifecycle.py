"""SQL of data over years: runs reduced to their summaries, load tests without their
datapoints, expired sign-in rows removed, deletions, keep marks, the audit trail and what
the database holds.

Every function works on a caller's connection and does a bounded amount of work (a batch),
so that the retention worker commits often and never holds a long write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from perffarm.model.lifecycle import AuditEvent, GroupUsage, KeepMark, TableUsage
from perffarm.server.core.errors import NotFound
from perffarm.server.core.timeutil import now, to_db, utc
from perffarm.server.store import tables as t
from perffarm.server.store.tracks import TrackKey

# Revoked and expired tokens stay this long, so that a replayed refresh token is still
# recognised (and ends its sign-in) for a while; then they go.
TOKEN_GRACE = timedelta(days=30)
SIGN_IN_LIFETIME = timedelta(hours=1)
RATE_EVENT_LIFETIME = timedelta(days=1)


# -- retention: runs ----------------------------------------------------------------------


def _kept_by_mark() -> sa.ColumnElement[bool]:
    marks = t.keep_marks
    return sa.exists().where(
        marks.c.project == t.runs.c.project,
        sa.or_(marks.c.branch == "", marks.c.branch == t.runs.c.branch),
    )


def _reducible(before: datetime) -> sa.ColumnElement[bool]:
    """Runs whose samples the policy removes: old enough, not reduced yet, not kept by
    themselves, by a release tag or by a mark on their project or branch."""
    r = t.runs
    return sa.and_(
        r.c.started_at < to_db(before),
        r.c.samples_removed_at.is_(None),
        r.c.keep.is_(False),
        r.c.tag.is_(None),
        sa.not_(_kept_by_mark()),
    )


def reducible_runs(conn: sa.Connection, before: datetime, limit: int) -> list[tuple[str, str]]:
    """(id, document) of up to ``limit`` runs the policy reduces, oldest first."""
    r = t.runs
    rows = conn.execute(
        sa.select(r.c.id, r.c.document)
        .where(_reducible(before))
        .order_by(r.c.started_at, r.c.id)
        .limit(limit)
    )
    return [(row.id, row.document) for row in rows]


def reducible_totals(conn: sa.Connection, before: datetime) -> tuple[int, int, int]:
    """How many runs the policy reduces, with their results' samples and attachments."""
    r = t.runs
    if conn.dialect.name == "postgresql":
        attachments = sa.func.json_array_length(sa.cast(r.c.document, sa.JSON)["attachments"])
    else:
        attachments = sa.func.json_array_length(r.c.document, "$.attachments")
    runs, held = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(attachments), 0)).where(
            _reducible(before)
        )
    ).one()
    samples = conn.execute(
        sa.select(_samples_held()).where(
            t.results.c.run_id.in_(sa.select(r.c.id).where(_reducible(before)))
        )
    ).scalar_one()
    return int(runs), int(samples), int(held)


def reduce_runs(conn: sa.Connection, reduced: list[tuple[str, str]], *, at: datetime) -> None:
    """Keep only the summaries of runs, given as (id, document without samples and
    attachments): the documents replaced, their results' samples emptied (their summary
    columns stay). Two statements for the whole batch; a run marked keep (or reduced) since
    it was read is left as it is."""
    if not reduced:
        return
    r = t.runs
    conn.execute(
        r.update()
        .where(
            r.c.id == sa.bindparam("run_id"),
            r.c.keep.is_(False),
            r.c.samples_removed_at.is_(None),
        )
        .values(document=sa.bindparam("reduced"), samples_removed_at=to_db(at)),
        [{"run_id": run_id, "reduced": document} for run_id, document in reduced],
    )
    done = sa.select(r.c.id).where(
        r.c.id.in_([run_id for run_id, _ in reduced]), r.c.samples_removed_at == to_db(at)
    )
    conn.execute(t.results.update().where(t.results.c.run_id.in_(done)).values(samples="[]"))


def set_run_keep(conn: sa.Connection, run_id: str, keep: bool) -> None:
    done = conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(keep=keep))
    if done.rowcount == 0:
        raise NotFound(f"no run {run_id}")


def add_keep_mark(conn: sa.Connection, project: str, branch: str, *, by: str) -> KeepMark:
    marks = t.keep_marks
    found = conn.execute(
        sa.select(marks).where(marks.c.project == project, marks.c.branch == branch)
    ).first()
    if found is None:
        conn.execute(
            marks.insert().values(
                project=project, branch=branch, created_by=by, created_at=to_db(now())
            )
        )
        found = conn.execute(
            sa.select(marks).where(marks.c.project == project, marks.c.branch == branch)
        ).one()
    return _mark(found)


def remove_keep_mark(conn: sa.Connection, project: str, branch: str) -> bool:
    marks = t.keep_marks
    done = conn.execute(marks.delete().where(marks.c.project == project, marks.c.branch == branch))
    return bool(done.rowcount)


def keep_marks(conn: sa.Connection, project: str | None = None) -> list[KeepMark]:
    marks = t.keep_marks
    query = sa.select(marks).order_by(marks.c.project, marks.c.branch)
    if project is not None:
        query = query.where(marks.c.project == project)
    return [_mark(row) for row in conn.execute(query)]


def _mark(row: sa.Row) -> KeepMark:
    return KeepMark(
        project=row.project,
        branch=row.branch,
        created_by=row.created_by,
        created_at=utc(row.created_at),
    )


# -- retention: load tests ----------------------------------------------------------------


def _with_datapoints(finished_before_ms: int) -> sa.Select[Any]:
    lt, chunks = t.loadtests, t.loadtest_chunks
    return (
        sa.select(lt.c.id)
        .where(
            lt.c.finished.is_not(None),
            lt.c.finished < finished_before_ms,
            sa.exists().where(chunks.c.test_id == lt.c.id),
        )
        .order_by(lt.c.finished, lt.c.id)
    )


def loadtests_with_old_datapoints(
    conn: sa.Connection, finished_before_ms: int, limit: int | None
) -> list[str]:
    return list(conn.execute(_with_datapoints(finished_before_ms).limit(limit)).scalars())


def datapoints_of(conn: sa.Connection, test_ids: list[str]) -> int:
    chunks = t.loadtest_chunks
    return int(
        conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(chunks.c.count), 0)).where(
                chunks.c.test_id.in_(test_ids)
            )
        ).scalar_one()
    )


def remove_datapoints(conn: sa.Connection, test_id: str) -> int:
    """Remove a finished test's datapoints; its batches (what made retries idempotent),
    summary, verdict and topology stay. Returns how many datapoints went."""
    chunks = t.loadtest_chunks
    removed = datapoints_of(conn, [test_id])
    conn.execute(chunks.delete().where(chunks.c.test_id == test_id))
    return removed


# -- retention: what expires anyway --------------------------------------------------------


@dataclass(frozen=True)
class Expired:
    device_codes: int
    sessions: int
    sign_ins: int
    tokens: int
    rate_events: int


def _expired_filters(at: datetime) -> dict[str, tuple[sa.Table, sa.ColumnElement[bool]]]:
    grace = to_db(at - TOKEN_GRACE)
    tk = t.tokens
    return {
        "device_codes": (t.device_codes, t.device_codes.c.expires_at < to_db(at)),
        "sessions": (t.web_sessions, t.web_sessions.c.expires_at < to_db(at)),
        "sign_ins": (
            t.sign_in_states,
            t.sign_in_states.c.created_at < to_db(at - SIGN_IN_LIFETIME),
        ),
        "tokens": (
            tk,
            sa.or_(
                sa.and_(tk.c.revoked_at.is_not(None), tk.c.revoked_at < grace),
                sa.and_(tk.c.expires_at.is_not(None), tk.c.expires_at < grace),
            ),
        ),
        "rate_events": (
            t.rate_events,
            t.rate_events.c.at < (at - RATE_EVENT_LIFETIME).timestamp(),
        ),
    }


def expired(conn: sa.Connection, at: datetime, *, remove: bool) -> Expired:
    """Count (and with ``remove``, delete) rows whose time is over."""
    counts = {}
    for name, (table, condition) in _expired_filters(at).items():
        if remove:
            counts[name] = int(conn.execute(table.delete().where(condition)).rowcount)
        else:
            counts[name] = int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(condition)
                ).scalar_one()
            )
    return Expired(**counts)


# -- deletion -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOwner:
    run_id: str
    project: str
    machine_id: int
    machine: str


def run_owner(conn: sa.Connection, run_id: str) -> RunOwner:
    r, m = t.runs, t.machines
    row = conn.execute(
        sa.select(r.c.id, r.c.project, r.c.machine_id, m.c.name)
        .join(m, m.c.id == r.c.machine_id)
        .where(r.c.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"no run {run_id}")
    return RunOwner(row.id, row.project, row.machine_id, row.name)


def tracks_of_runs(conn: sa.Connection, run_ids: list[str]) -> list[TrackKey]:
    """Every track the runs have points on (whatever the machine's approval)."""
    res, s, r = t.results, t.series, t.runs
    rows = conn.execute(
        sa.select(s.c.project, s.c.benchmark, s.c.params, s.c.metric, s.c.branch, r.c.machine_id)
        .distinct()
        .join(res, res.c.series_id == s.c.id)
        .join(r, r.c.id == res.c.run_id)
        .where(res.c.run_id.in_(run_ids))
    )
    return [TrackKey(*row) for row in rows]


def delete_runs(conn: sa.Connection, run_ids: list[str], *, at: datetime) -> int:
    """Delete runs with their results, the alerts they are the evidence of (with their
    history) and the breaks marked at them; their ids are remembered for their machines."""
    if not run_ids:
        return 0
    r = t.runs
    owners = conn.execute(sa.select(r.c.id, r.c.machine_id).where(r.c.id.in_(run_ids))).all()
    alerts = t.alerts
    alert_ids = list(
        conn.execute(sa.select(alerts.c.id).where(alerts.c.run_after.in_(run_ids))).scalars()
    )
    if alert_ids:
        conn.execute(t.alert_events.delete().where(t.alert_events.c.alert_id.in_(alert_ids)))
        conn.execute(alerts.delete().where(alerts.c.id.in_(alert_ids)))
    conn.execute(t.series_breaks.delete().where(t.series_breaks.c.run_id.in_(run_ids)))
    conn.execute(t.results.delete().where(t.results.c.run_id.in_(run_ids)))
    deleted = conn.execute(r.delete().where(r.c.id.in_(run_ids))).rowcount
    gone = t.deleted_runs
    conn.execute(gone.delete().where(gone.c.run_id.in_(run_ids)))
    if owners:
        conn.execute(
            gone.insert(),
            [{"run_id": i, "machine_id": m, "deleted_at": to_db(at)} for i, m in owners],
        )
    return int(deleted)


def alerts_of_runs(conn: sa.Connection, run_ids: list[str]) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(t.alerts)
            .where(t.alerts.c.run_after.in_(run_ids))
        ).scalar_one()
    )


def runs_of_project(conn: sa.Connection, project: str, limit: int) -> list[str]:
    r = t.runs
    return list(
        conn.execute(
            sa.select(r.c.id).where(r.c.project == project).order_by(r.c.id).limit(limit)
        ).scalars()
    )


def project_exists(conn: sa.Connection, project: str) -> bool:
    return (
        conn.execute(sa.select(t.runs.c.id).where(t.runs.c.project == project).limit(1)).first()
        is not None
    )


def deleted_elsewhere(conn: sa.Connection, run_ids: list[str], machine_id: int) -> set[str]:
    """Ids among ``run_ids`` of runs deleted from another machine than ``machine_id``: only
    the machine that sent a deleted run may send its id again. Ids deleted from this very
    machine are forgotten (they are about to be stored again)."""
    gone = t.deleted_runs
    rows = conn.execute(
        sa.select(gone.c.run_id, gone.c.machine_id).where(gone.c.run_id.in_(run_ids))
    ).all()
    if not rows:
        return set()
    mine = [row.run_id for row in rows if row.machine_id == machine_id]
    if mine:
        conn.execute(gone.delete().where(gone.c.run_id.in_(mine)))
    return {row.run_id for row in rows if row.machine_id != machine_id}


def retire_machine(conn: sa.Connection, name: str, *, at: datetime) -> bool:
    """Mark a machine retired (it uploads no more; its history stays). False: it was."""
    m = t.machines
    done = conn.execute(
        m.update().where(m.c.name == name, m.c.retired_at.is_(None)).values(retired_at=to_db(at))
    )
    return bool(done.rowcount)


def machine_retired_at(conn: sa.Connection, machine_id: int) -> datetime | None:
    value = conn.execute(
        sa.select(t.machines.c.retired_at).where(t.machines.c.id == machine_id)
    ).scalar_one_or_none()
    return utc(value)


def delete_user(conn: sa.Connection, user_id: int) -> None:
    """Remove a user with their tokens, sessions, grants and device codes; their machines
    stay (owned by the name alone, managed by admins)."""
    for table in (t.tokens, t.web_sessions, t.machine_grants, t.device_codes):
        conn.execute(table.delete().where(table.c.user_id == user_id))
    conn.execute(
        t.machines.update().where(t.machines.c.owner_user_id == user_id).values(owner_user_id=None)
    )
    conn.execute(t.users.delete().where(t.users.c.id == user_id))


# -- the audit trail ----------------------------------------------------------------------


def record(
    conn: sa.Connection, *, actor: str, action: str, target: str, detail: str = "", at: datetime
) -> None:
    conn.execute(
        t.audit_events.insert().values(
            at=to_db(at), actor=actor[:200], action=action, target=target[:300], detail=detail
        )
    )


def audit_events(
    conn: sa.Connection, *, limit: int, before_id: int | None = None
) -> list[AuditEvent]:
    a = t.audit_events
    query = sa.select(a).order_by(a.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(a.c.id < before_id)
    return [
        AuditEvent(
            id=row.id,
            at=utc(row.at),
            actor=row.actor,
            action=row.action,
            target=row.target,
            detail=row.detail,
        )
        for row in conn.execute(query)
    ]


# -- what the database holds --------------------------------------------------------------


def table_usage(conn: sa.Connection) -> tuple[list[TableUsage], int | None]:
    """Rows and bytes of every table, and the whole database's bytes when known."""
    sizes: dict[str, int] = {}
    total: int | None = None
    if conn.dialect.name == "postgresql":
        for table in t.metadata.sorted_tables:
            sizes[table.name] = int(
                conn.execute(
                    sa.text("SELECT pg_total_relation_size(CAST(:name AS regclass))"),
                    {"name": table.name},
                ).scalar_one()
            )
        total = int(
            conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
        )
    else:
        page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
        total = page_size * pages
        try:
            rows = conn.exec_driver_sql("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
            by_object = {name: int(size) for name, size in rows}
        except sa.exc.OperationalError:  # SQLite built without the dbstat table
            by_object = {}
        if by_object:
            owners: dict[str, str] = dict(
                conn.exec_driver_sql(
                    "SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"
                ).all()
            )
            for name, size in by_object.items():
                owner = owners.get(name, name)
                sizes[owner] = sizes.get(owner, 0) + size
    usage = []
    for table in t.metadata.sorted_tables:
        rows_held = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        usage.append(TableUsage(name=table.name, rows=rows_held, bytes=sizes.get(table.name)))
    return usage, total


def _samples_held() -> sa.ColumnElement[int]:
    # The stored JSON list's commas count its samples without parsing it; '[]' holds none.
    res = t.results
    length = sa.func.length(res.c.samples)
    commas = length - sa.func.length(sa.func.replace(res.c.samples, ",", ""))
    return sa.func.coalesce(sa.func.sum(sa.case((res.c.samples == "[]", 0), else_=commas + 1)), 0)


def group_usage(conn: sa.Connection, by: str) -> list[GroupUsage]:
    """Runs, results and raw samples per project or per machine, biggest first."""
    r, res, m = t.runs, t.results, t.machines
    name = r.c.project if by == "project" else m.c.name
    runs_per: dict[Any, int] = dict(
        conn.execute(
            sa.select(name, sa.func.count()).select_from(r.join(m, m.c.id == r.c.machine_id))
            .group_by(name)
        ).all()
    )  # fmt: skip
    results_per = {
        row[0]: (int(row[1]), int(row[2]))
        for row in conn.execute(
            sa.select(name, sa.func.count(), _samples_held())
            .select_from(res.join(r, r.c.id == res.c.run_id).join(m, m.c.id == r.c.machine_id))
            .group_by(name)
        )
    }
    groups = [
        GroupUsage(
            name=str(key),
            runs=int(count),
            results=results_per.get(key, (0, 0))[0],
            samples=results_per.get(key, (0, 0))[1],
        )
        for key, count in runs_per.items()
    ]
    return sorted(groups, key=lambda g: (-g.samples, -g.results, g.name))


def vacuum(engine: sa.Engine) -> None:
    """Give the space of removed rows back: SQLite rewrites its file (a write lock while it
    runs), PostgreSQL marks it reusable and refreshes the planner's statistics."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("VACUUM (ANALYZE)")
        else:
            conn.exec_driver_sql("VACUUM")
