"""Single datapoints from concurrent requests (``PUT /test/{id}/peer/{peerId}/metrics``),
stored together."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perffarm.server.store import loadtests as store
from perffarm.server.store.loadtests import PostgresChunkWriter

#: Datapoints by test, ``{test id: [(datapoint JSON, timestamp)]}``.
Groups = dict[str, list[tuple[bytes, int]]]


class GroupWriter:
    """Single datapoints from concurrent requests, stored together: one chunk per test and
    group, in one transaction.

    A commit costs far more than a datapoint, so a thousand clients each sending one
    datapoint would otherwise spend the server on commits. Each request still waits for the
    commit that holds its datapoint: an answered datapoint is a stored datapoint.
    """

    def __init__(
        self,
        engine: Engine,
        chunk_rows: Callable[[Groups], list[dict[str, Any]]],
        max_rows: int = 5000,
    ) -> None:
        self.engine = engine
        #: The chunk rows of a group of datapoints (one per test).
        self.chunk_rows = chunk_rows
        self.max_rows = max_rows
        self._pending: list[tuple[str, bytes, int, asyncio.Future[None]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        # SQLite: its own thread (one handoff per group, not per request, and a group's commit
        # never waits behind the shared pool's work) and its own connection, used only there.
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sa.Connection | None = None
        # PostgreSQL: its own connection, driven by the event loop itself.
        self._postgres: PostgresChunkWriter | None = None

    async def write(self, test_id: str, point: bytes, timestamp: int) -> None:
        """Store one datapoint (its JSON object, as it goes into the whole test)."""
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="perffarm-loadtest-writer")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((test_id, point, timestamp, future))
        assert self._wake is not None
        self._wake.set()
        await future

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                taken = self._pending[: self.max_rows]
                del self._pending[: self.max_rows]
                groups: Groups = {}
                for test_id, point, timestamp, _ in taken:
                    groups.setdefault(test_id, []).append((point, timestamp))
                try:
                    if self.engine.dialect.name == "postgresql":
                        if self._postgres is None:
                            self._postgres = PostgresChunkWriter(self.engine.url)
                        await self._postgres.store(self.chunk_rows(groups))
                    else:
                        if self._executor is None:
                            self._executor = concurrent.futures.ThreadPoolExecutor(
                                1, thread_name_prefix="perffarm-loadtest-writer"
                            )
                        await asyncio.get_running_loop().run_in_executor(
                            self._executor, self._store_groups, groups
                        )
                except Exception as exc:
                    for *_, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for *_, future in taken:
                        if not future.done():
                            future.set_result(None)

    def _store_groups(self, groups: Groups) -> None:
        """SQLite, on the writer's thread: one transaction for the group's chunks."""
        rows = self.chunk_rows(groups)
        if self._conn is None:
            self._conn = self.engine.connect()
        try:
            with self._conn.begin():
                store.insert_chunks(self._conn, rows)
        except BaseException:
            self._close()  # a new connection for the next group
            raise

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            self._executor.submit(self._close)
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._postgres is not None:
            await self._postgres.close()
            self._postgres = None
