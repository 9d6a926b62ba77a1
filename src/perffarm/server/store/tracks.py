"""What change-point detection reads: a *track* is one machine's history of one result
(project, benchmark, params, metric, branch, machine) across the machine's fingerprints,
in commit-time order (the series API's order)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from perffarm.server.store import tables as t
from perffarm.server.store.series import chunks


@dataclass(frozen=True)
class TrackKey:
    project: str
    benchmark: str
    params: str
    metric: str
    branch: str
    machine_id: int


def keys_of_runs(conn: sa.Connection, run_ids: list[str]) -> list[TrackKey]:
    """The tracks these runs added points to, on approved machines only: runs of machines
    not approved are hidden, and so are their alerts (they are analysed when the machine's
    first run after approval arrives)."""
    res, s, m = t.results, t.series, t.machines
    keys: dict[TrackKey, None] = {}
    for chunk in chunks(sorted(set(run_ids))):
        rows = conn.execute(
            sa.select(
                s.c.project, s.c.benchmark, s.c.params, s.c.metric, s.c.branch, res.c.machine_id
            )
            .distinct()
            .join(s, s.c.id == res.c.series_id)
            .join(m, m.c.id == res.c.machine_id)
            .where(res.c.run_id.in_(chunk), m.c.approved.is_(True))
        ).all()
        for row in rows:
            keys[TrackKey(*row)] = None
    return list(keys)


def series_of(conn: sa.Connection, key: TrackKey) -> frozenset[int]:
    """The series rows of a track: one per fingerprint the machine had."""
    s = t.series
    return frozenset(
        conn.execute(
            sa.select(s.c.id).where(
                s.c.project == key.project,
                s.c.benchmark == key.benchmark,
                s.c.metric == key.metric,
                s.c.params == key.params,
                s.c.branch == key.branch,
            )
        ).scalars()
    )


def points(
    conn: sa.Connection, key: TrackKey, series_ids: frozenset[int], *, after_id: int = 0
) -> list[sa.Row]:
    """The track's results (after the result id ``after_id``) in commit-time order, with
    what a point needs: value columns, fingerprint, commit."""
    res, r, s = t.results, t.runs, t.series
    query = (
        sa.select(
            res.c.id,
            res.c.series_id,
            res.c.run_id,
            res.c.median,
            res.c.mean,
            res.c.commit_time.label("order_time"),
            res.c.unit,
            res.c.direction,
            s.c.fingerprint,
            r.c.commit,
            r.c.commit_time,
        )
        .join(r, r.c.id == res.c.run_id)
        .join(s, s.c.id == res.c.series_id)
        .where(res.c.series_id.in_(sorted(series_ids)), res.c.machine_id == key.machine_id)
        .order_by(res.c.commit_time, res.c.id)
    )
    if after_id:
        query = query.where(res.c.id > after_id)
    return list(conn.execute(query).all())


def count_and_breaks(
    conn: sa.Connection, key: TrackKey, series_ids: frozenset[int]
) -> tuple[int, frozenset[str]]:
    """How many results the track holds, and the runs where a user marked a new normal."""
    res, sb = t.results, t.series_breaks
    ids = sorted(series_ids)
    rows = conn.execute(
        sa.select(sa.func.count()).where(
            res.c.series_id.in_(ids), res.c.machine_id == key.machine_id
        )
    ).scalar_one()
    breaks = frozenset(
        conn.execute(
            sa.select(sb.c.run_id).where(sb.c.series_id.in_(ids), sb.c.machine_id == key.machine_id)
        ).scalars()
    )
    return int(rows), breaks


def alerted_runs(conn: sa.Connection, key: TrackKey, series_ids: frozenset[int]) -> set[str]:
    """The first runs of the new level of every alert recorded on the track."""
    a = t.alerts
    return set(
        conn.execute(
            sa.select(a.c.run_after).where(
                a.c.series_id.in_(sorted(series_ids)), a.c.machine_id == key.machine_id
            )
        ).scalars()
    )
