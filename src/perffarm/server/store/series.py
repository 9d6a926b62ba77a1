"""Series rows: one per distinct (project, benchmark, canonical params, metric, fingerprint,
branch), found by the SHA-256 of that key, created on first use by any writer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from perffarm.model.api import SeriesKey
from perffarm.server.store import tables as t

_CHUNK = 500


def series_key(
    project: str, benchmark: str, params: str, metric: str, fingerprint: str, branch: str
) -> str:
    text = json.dumps([project, benchmark, params, metric, fingerprint, branch])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunks(values: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def upsert(conn: sa.Connection, keys: dict[str, dict[str, str]]) -> dict[str, int]:
    """The id of every series key given (key hash -> its columns), creating missing rows."""
    ids: dict[str, int] = {}
    hashes = sorted(keys)
    for chunk in chunks(hashes):
        rows = conn.execute(
            sa.select(t.series.c.key_hash, t.series.c.id).where(t.series.c.key_hash.in_(chunk))
        )
        ids.update({row.key_hash: row.id for row in rows})
    missing = [h for h in hashes if h not in ids]
    if missing:
        # Sorted, and ON CONFLICT DO NOTHING: concurrent writers creating the same series
        # wait for each other in one order instead of deadlocking or failing.
        dialect = conn.dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.series)
        conn.execute(
            insert.on_conflict_do_nothing(index_elements=["key_hash"]),
            [{"key_hash": h, **keys[h]} for h in missing],
        )
        for chunk in chunks(missing):
            rows = conn.execute(
                sa.select(t.series.c.key_hash, t.series.c.id).where(t.series.c.key_hash.in_(chunk))
            )
            ids.update({row.key_hash: row.id for row in rows})
    return ids


def keys_of_project(
    conn: sa.Connection,
    project: str,
    *,
    benchmark: str | None,
    metric: str | None,
    branch: str | None,
    fingerprint: str | None,
    limit: int,
) -> list[SeriesKey]:
    """Series rows (id and key) of a project: the ids that breaks and alerts refer to."""
    s = t.series
    query = sa.select(s.c.id, s.c.benchmark, s.c.params, s.c.metric, s.c.fingerprint, s.c.branch)
    query = query.where(s.c.project == project)
    for column, value in (
        (s.c.benchmark, benchmark),
        (s.c.metric, metric),
        (s.c.branch, branch),
        (s.c.fingerprint, fingerprint),
    ):
        if value is not None:
            query = query.where(column == value)
    rows = conn.execute(query.order_by(s.c.id).limit(limit)).all()
    return [
        SeriesKey(
            id=row.id,
            project=project,
            benchmark=row.benchmark,
            params=json.loads(row.params),
            metric=row.metric,
            fingerprint=row.fingerprint or None,
            branch=row.branch or None,
        )
        for row in rows
    ]
