"""Load tests as stored: a row per test, a row per accepted batch, and the datapoints in
**chunks**.

A chunk (``loadtest_chunks``) holds the datapoints of one accepted batch, or of one group of
single ``PUT .../metrics`` written together, as one JSON array
(``[{"peerId","timestamp","metrics"}, ...]``), LZ4-compressed: a row per datapoint cost more
than everything else at 100,000 datapoints a second. A chunk is named by ``(test, worker,
incarnation, sequence)``, unique, so a retried batch is stored once; readers decode chunks
in storage (id) order.
"""

from __future__ import annotations

import contextlib
import json
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import lz4.block
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perffarm.server.store.tables import (
    loadtest_batches,
    loadtest_chunks,
    loadtest_tokens,
    loadtest_topology,
    loadtests,
)

#: First key of the PostgreSQL advisory locks that order a test's chunks (``insert_chunks``).
_CHUNK_LOCK_SPACE = 0x5046_4C54  # "PFLT"


# -- chunk encoding -------------------------------------------------------------------------


def encode_chunk(data: bytes) -> tuple[str, bytes]:
    """A chunk's JSON array as stored: (codec, bytes). LZ4: 2.5 times smaller JSON at
    400 MB/s, and it lets go of the GIL while it works."""
    return "lz4", lz4.block.compress(data)


def decode_chunk(codec: str, blob: bytes) -> bytes:
    """A stored chunk back to its JSON array ``[{"peerId","timestamp","metrics"}, ...]``.

    Chunks are written LZ4-compressed; 'json' (uncompressed) and 'zlib' rows are read too.
    """
    blob = bytes(blob)
    if codec == "json":
        return blob
    if codec == "lz4":
        return bytes(lz4.block.decompress(blob))
    if codec == "zlib":
        return zlib.decompress(blob)
    raise ValueError(f"unknown load-test chunk codec {codec!r}")


def chunk_items(data: bytes) -> bytes:
    """The datapoints of a chunk's JSON array without its brackets, to join with others."""
    return data[1:-1]


# -- tests ----------------------------------------------------------------------------------


def create(engine: Engine, row: dict[str, Any]) -> bool:
    """Insert a test; False when one with its id exists already."""
    with engine.begin() as conn:
        exists = conn.execute(sa.select(loadtests.c.id).where(loadtests.c.id == row["id"])).first()
        if exists is not None:
            return False
        try:
            conn.execute(loadtests.insert().values(**row))
        except sa.exc.IntegrityError:
            return False
    return True


def row(engine: Engine, test_id: str) -> sa.Row | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(loadtests).where(loadtests.c.id == test_id)).first()


def started_and_finished(engine: Engine, test_id: str) -> tuple[int | None, int | None] | None:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(loadtests.c.started, loadtests.c.finished).where(loadtests.c.id == test_id)
        ).first()
    return None if found is None else (found.started, found.finished)


def start(engine: Engine, test_id: str, stamp: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            loadtests.update()
            .where(loadtests.c.id == test_id, loadtests.c.finished.is_(None))
            .values(started=stamp)
        )


def finish(engine: Engine, test_id: str, stamp: int, summary: dict[str, Any]) -> bool:
    """Mark the test finished with its summary; False when it was finished already."""
    with engine.begin() as conn:
        done = conn.execute(
            loadtests.update()
            .where(loadtests.c.id == test_id, loadtests.c.finished.is_(None))
            .values(finished=stamp, summary=json.dumps(summary), verdict=summary["verdict"])
        ).rowcount
    return bool(done)


def listing(engine: Engine, limit: int) -> list[sa.Row]:
    """Tests, newest first."""
    with engine.connect() as conn:
        return list(
            conn.execute(sa.select(loadtests).order_by(loadtests.c.created.desc()).limit(limit))
        )


def running(engine: Engine) -> list[sa.Row]:
    """(id, started, definition) of every started test not finished yet."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(loadtests.c.id, loadtests.c.started, loadtests.c.definition).where(
                    loadtests.c.started.is_not(None), loadtests.c.finished.is_(None)
                )
            )
        )


def datapoint_count(engine: Engine, test_id: str) -> int:
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(loadtest_chunks.c.count), 0)).where(
                loadtest_chunks.c.test_id == test_id
            )
        ).scalar_one()
    return int(count)


def set_peer_results(engine: Engine, test_id: str, peer_id: str, entry: dict[str, Any]) -> None:
    """One peer's results in the test's results object (read, changed and written under a
    row lock, so concurrent peers do not overwrite each other)."""
    with engine.begin() as conn:
        current = conn.execute(
            sa.select(loadtests.c.results).where(loadtests.c.id == test_id).with_for_update()
        ).scalar_one()
        results = json.loads(current)
        results[peer_id] = entry
        conn.execute(
            loadtests.update().where(loadtests.c.id == test_id).values(results=json.dumps(results))
        )


def add_topology(engine: Engine, test_id: str, stamp: int, topology: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            loadtest_topology.insert().values(
                test_id=test_id, timestamp=stamp, topology=json.dumps(topology)
            )
        )


def topology(conn: sa.Connection, test_id: str) -> list[sa.Row]:
    """(timestamp, topology JSON) of a test, in the order they came."""
    t = loadtest_topology
    return list(
        conn.execute(
            sa.select(t.c.timestamp, t.c.topology).where(t.c.test_id == test_id).order_by(t.c.id)
        )
    )


# -- batches and chunks ---------------------------------------------------------------------


def add_batch(engine: Engine, batch: dict[str, Any], chunk: dict[str, Any] | None) -> bool:
    """Record a batch and store its chunk, in one transaction; False when the batch (same
    test, worker, incarnation, sequence) is stored already (then nothing of this copy is
    kept: the batch row is inserted first)."""
    try:
        with engine.begin() as conn:
            conn.execute(loadtest_batches.insert().values(**batch))
            if chunk is not None:
                insert_chunks(conn, [chunk])
    except sa.exc.IntegrityError:
        return False
    return True


def batches(conn: sa.Connection, test_id: str) -> list[sa.Row]:
    return list(
        conn.execute(sa.select(loadtest_batches).where(loadtest_batches.c.test_id == test_id))
    )


def latency_sketches(conn: sa.Connection, test_id: str) -> list[tuple[int, str]]:
    """(batch id, latency sketch JSON) of the test's batches that carry one."""
    b = loadtest_batches.c
    rows = conn.execute(
        sa.select(b.id, b.latency).where(b.test_id == test_id, b.latency.is_not(None))
    )
    return [(row.id, row.latency) for row in rows]


def chunks(
    conn: sa.Connection, test_id: str, *, from_id: int = 0
) -> Iterator[tuple[int, int, bytes]]:
    """(chunk id, datapoints, JSON array) of a test's chunks from ``from_id`` on, in order."""
    c = loadtest_chunks.c
    rows = conn.execution_options(yield_per=32).execute(
        sa.select(c.id, c.count, c.codec, c.data)
        .where(c.test_id == test_id, c.id >= from_id)
        .order_by(c.id)
    )
    for chunk_id, count, codec, blob in rows:
        yield chunk_id, count, decode_chunk(codec, blob)


def chunk_ids(conn: sa.Connection, test_id: str) -> list[int]:
    c = loadtest_chunks.c
    return list(conn.execute(sa.select(c.id).where(c.test_id == test_id)).scalars())


def chunks_by_id(conn: sa.Connection, ids: list[int]) -> Iterator[tuple[int, bytes]]:
    """(chunk id, JSON array) of these chunks, in id order."""
    c = loadtest_chunks.c
    for start in range(0, len(ids), 200):
        part = ids[start : start + 200]
        rows = conn.execute(sa.select(c.id, c.codec, c.data).where(c.id.in_(part)).order_by(c.id))
        for chunk_id, codec, blob in rows:
            yield chunk_id, decode_chunk(codec, blob)


_CHUNK_COLUMNS = (
    "test_id",
    "worker",
    "incarnation",
    "sequence",
    "first_timestamp",
    "last_timestamp",
    "count",
    "codec",
    "data",
)


def _ordered_chunk_insert(param: Callable[[str], str]) -> str:
    """The PostgreSQL statement of ``insert_chunks``: one chunk, inserted under its test's
    ordering lock taken in the same statement (one round trip); ``param`` writes a
    parameter in the driver's style."""
    columns = ", ".join(f'"{c}"' for c in _CHUNK_COLUMNS)
    values = ", ".join(param(c) for c in _CHUNK_COLUMNS)
    lock = f"pg_advisory_xact_lock({param('lock_space')}, hashtext({param('test_id')}))"
    return (
        f"INSERT INTO loadtest_chunks ({columns}) SELECT {values} FROM (SELECT {lock}) AS ordered"
    )


_ORDERED_CHUNK_INSERT = sa.text(_ordered_chunk_insert(lambda name: f":{name}"))


def _ordered_params(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as parameters of the ordered insert. Sorted by test: every transaction takes
    its locks in one order, so two writers cannot deadlock."""
    ordered = sorted(rows, key=lambda row: row["test_id"])
    return [{**row, "lock_space": _CHUNK_LOCK_SPACE} for row in ordered]


def insert_chunks(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert chunk rows so that a test's chunk ids follow commit order.

    The live page reads a test's chunks after a cursor (a chunk id). On PostgreSQL two
    transactions take ids from the sequence in one order and may commit in the other, so a
    reader could pass a chunk that is not yet visible and never come back for it. There,
    each insert first takes a per-test lock that is held until the commit, so a later id is
    a later commit. SQLite has a single writer already.
    """
    if conn.dialect.name != "postgresql":
        conn.execute(loadtest_chunks.insert(), rows)
        return
    conn.execute(_ORDERED_CHUNK_INSERT, _ordered_params(rows))


class PostgresChunkWriter:
    """A connection of its own for the group writer on PostgreSQL, driven by the event loop
    (psycopg's async API), not by a thread.

    From a thread, every round trip ended in a wait for the GIL behind the event loop's
    work (up to the 5 ms switch interval), and single PUTs were a third slower. Here a
    group's BEGIN, insert and COMMIT go out together in one pipelined round trip.
    """

    SQL = _ordered_chunk_insert(lambda name: f"%({name})s")
    #: A connection idle this long is checked before use, as the pool's pre-ping would: a
    #: database restarted meanwhile costs a reconnect, not a failed group.
    IDLE_CHECK = 5.0

    def __init__(self, url: sa.URL) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: Any = None
        self._used = 0.0

    async def store(self, rows: list[dict[str, Any]]) -> None:
        import psycopg

        params = _ordered_params(rows)
        try:
            conn = await self._connection()
            async with conn.pipeline(), conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(self.SQL, params)
        except psycopg.Error as exc:
            await self.close()
            raise sa.exc.DBAPIError.instance(
                "INSERT INTO loadtest_chunks", None, exc, psycopg.Error
            ) from exc
        self._used = time.monotonic()

    async def _connection(self) -> Any:
        import psycopg

        if self._conn is not None and time.monotonic() - self._used > self.IDLE_CHECK:
            try:
                await self._conn.execute("SELECT 1")
            except psycopg.Error:
                await self.close()
        if self._conn is None:
            self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


# -- who may write a test -------------------------------------------------------------------


def creator(engine: Engine, test_id: str) -> int | None:
    """The user who made the test, when a user did."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(loadtests.c.created_by_user_id).where(loadtests.c.id == test_id)
        ).scalar_one_or_none()
    return int(found) if found is not None else None


def add_token(engine: Engine, test_id: str, token_id: str, token_hash: str, by: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            loadtest_tokens.insert().values(
                id=token_id,
                test_id=test_id,
                token_hash=token_hash,
                created_by=by,
                created_at=datetime.now(UTC),
            )
        )


def token_of_test(engine: Engine, test_id: str, token_hash: str) -> bool:
    """A token minted for this test has this hash."""
    t = loadtest_tokens.c
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(t.id).where(t.test_id == test_id, t.token_hash == token_hash)
        ).first()
    return found is not None
