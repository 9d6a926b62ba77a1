"""Load tests on the results server: storage, the original harness's API, ``/api/v1/loadtests``.

The original results server kept tests in memory and wrote ``{id}.json`` on finish. Here a
test lives in the database from its creation (so a restart loses nothing and several server
processes share it) and is still written to ``{results_location}/{id}.json`` on finish, in
the original shape, for the tools that read those files.

Datapoints are stored in **chunks**: one row (``loadtest_chunks``) per accepted batch, and
one per group of single ``PUT .../metrics`` written together, holding the datapoints as one
JSON array (``[{"peerId","timestamp","metrics"}, ...]``, LZ4-compressed). A row per
datapoint cost more than everything else at 100,000 datapoints a second. A chunk is named by
``(test, worker, incarnation, sequence)``, unique, so a retried batch is stored once; readers
(the whole test, summaries, the live page) decode chunks in storage order.

The compatible routes answer exactly as the original did, errors included
(``{"status": "test-not-found"}``), and send open CORS headers; they are open by default
and can require a token. The ``/api/v1`` routes always need credentials to write.

**Ingest from other transports** (gRPC): ``parse_batch(raw) -> ParsedBatch``, then
``await ingest_batch(app, test_id, batch) -> BatchAck``,
which refuses with ``IngestRefused`` (``.status`` 404/409 and ``.code`` as the HTTP routes
say it) and otherwise stores, relays and acknowledges exactly like
``POST /api/v1/loadtests/{id}/datapoints``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import logging
import os
import re
import secrets
import string
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import lz4.block
import msgspec
import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from perffarm.gcpause import collector_paused
from perffarm.loadtest import relays
from perffarm.loadtest import thresholds as thr
from perffarm.loadtest.relays import read_points
from perffarm.loadtest.sketch import DDSketch
from perffarm.loadtest.summary import (
    DEFAULT_MISSING_AFTER_MS,
    MetricValues,
    WorkerReport,
    latency_figures,
    summarize,
)
from perffarm.loadtest.thresholds import ThresholdError, parse_all
from perffarm.model.loadtest import (
    MAX_BATCH_DATAPOINTS,
    TEST_ID_PATTERN,
    BatchAck,
    DatapointBatch,
    LoadTestCreate,
    LoadTestInfo,
)
from perffarm.server import permissions
from perffarm.server.core.principal import Principal
from perffarm.server.http.deps import principal
from perffarm.server.store.tables import (
    loadtest_batches,
    loadtest_chunks,
    loadtest_topology,
    loadtests,
)

log = logging.getLogger("perffarm.loadtests")

ENV_RESULTS = "PERFFARM_LOADTEST_RESULTS"
ENV_COMPAT_AUTH = "PERFFARM_LOADTEST_COMPAT_AUTH"
ENV_TOKEN = "PERFFARM_LOADTEST_TOKEN"
ENV_INFLUX = "PERFFARM_LOADTEST_INFLUX"
ENV_INFLUX_DB = "PERFFARM_LOADTEST_INFLUX_DB"
ENV_MISSING_AFTER = "PERFFARM_LOADTEST_MISSING_AFTER"
ENV_CHECK_EVERY = "PERFFARM_LOADTEST_CHECK_EVERY"
TOKEN_HEADER = "X-Perffarm-Loadtest-Token"
COMPAT_AUTH_MODES = ("open", "token")
#: How often running tests' ``abortOnFail`` thresholds are checked (the stats interval).
DEFAULT_CHECK_EVERY = 2.0

NOT_FOUND = {"status": "test-not-found"}
INVALID_ID = {"status": "invalid-test-id", "allowed": TEST_ID_PATTERN}
NOT_STARTED = {"status": "test-not-started"}
ALREADY_FINISHED = {"status": "test-already-finished"}
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET,HEAD,PUT,PATCH,POST,DELETE",
    "Access-Control-Allow-Headers": "*",
}
_ID_CHARS = string.ascii_letters + string.digits
_SAFE_ID = re.compile(TEST_ID_PATTERN)
_MAX_INT = 2**53
#: ``datapoints?after=`` cursors: chunk id * this + position in the chunk + 1.
_CURSOR_SPAN = 1 << 17
#: First key of the PostgreSQL advisory locks that order a test's chunks (``insert_chunks``).
_CHUNK_LOCK_SPACE = 0x5046_4C54  # "PFLT"
assert MAX_BATCH_DATAPOINTS < _CURSOR_SPAN


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class LoadTestSettings:
    """Read from ``PERFFARM_LOADTEST_*`` so that every uvicorn worker process agrees."""

    results_location: Path | None = None
    compat_auth: str = "open"
    token: str | None = None
    influx_url: str | None = None
    influx_db: str = "comms"
    missing_after_ms: int = DEFAULT_MISSING_AFTER_MS
    #: Seconds between checks of running tests' ``abortOnFail`` thresholds.
    check_every: float = DEFAULT_CHECK_EVERY

    @classmethod
    def from_env(cls) -> LoadTestSettings:
        results = os.environ.get(ENV_RESULTS) or None
        return cls(
            results_location=Path(results).expanduser() if results else None,
            compat_auth=os.environ.get(ENV_COMPAT_AUTH, "open"),
            token=os.environ.get(ENV_TOKEN) or None,
            influx_url=os.environ.get(ENV_INFLUX) or None,
            influx_db=os.environ.get(ENV_INFLUX_DB) or "comms",
            missing_after_ms=int(
                float(os.environ.get(ENV_MISSING_AFTER) or DEFAULT_MISSING_AFTER_MS / 1000) * 1000
            ),
            check_every=float(os.environ.get(ENV_CHECK_EVERY) or DEFAULT_CHECK_EVERY),
        )

    def to_env(self) -> dict[str, str]:
        env = {ENV_COMPAT_AUTH: self.compat_auth, ENV_INFLUX_DB: self.influx_db}
        if self.results_location is not None:
            env[ENV_RESULTS] = str(self.results_location)
        if self.token:
            env[ENV_TOKEN] = self.token
        if self.influx_url:
            env[ENV_INFLUX] = self.influx_url
        return env


class TestState:
    """What a route needs to know to accept a write: started and finished times."""

    __slots__ = ("finished", "started")

    def __init__(self, started: int | None, finished: int | None) -> None:
        self.started = started
        self.finished = finished


# -- JSON and chunk encoding -------------------------------------------------------------


def _loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def _dumpb(value: Any) -> bytes:
    return orjson.dumps(value)


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
        return lz4.block.decompress(blob)
    if codec == "zlib":
        import zlib

        return zlib.decompress(blob)
    raise ValueError(f"unknown load-test chunk codec {codec!r}")


def _chunk_items(data: bytes) -> bytes:
    """The datapoints of a chunk's JSON array without its brackets, to join with others."""
    return data[1:-1]


# -- parsing a batch ---------------------------------------------------------------------


class BatchError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class ParsedBatch:
    """A checked batch, its datapoints already in their stored form.

    ``data`` is the JSON array ``[{"peerId","timestamp","metrics"}, ...]`` with every
    timestamp set (the server's time of arrival where the worker sent none); ``metrics``
    objects are kept byte for byte as the worker sent them.
    """

    envelope: DatapointBatch
    count: int
    first_timestamp: int | None
    last_timestamp: int | None
    data: bytes

    @property
    def points(self) -> list[dict[str, Any]]:
        """The datapoints as Python values (parses ``data``: not for the ingest path)."""
        return read_points(self.data) if self.count else []


def _check_sketch(field: str, data: Any) -> None:
    if data is None:
        return
    try:
        sketch = DDSketch.from_dict(data)
        ok = sketch.accuracy == DDSketch().accuracy and all(
            abs(k) < 100_000 and 0 <= v < _MAX_INT for k, v in sketch.buckets.items()
        )
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
        ok = False
    if not ok:
        raise BatchError(field, "not a DDSketch of accuracy 0.01 (DDSketch.to_dict())")


def _envelope(fields: dict[str, Any]) -> DatapointBatch:
    try:
        envelope = DatapointBatch.model_validate({**fields, "datapoints": []})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise BatchError(f"body.{where}", first["msg"]) from None
    if envelope.sequence >= _MAX_INT:
        raise BatchError("body.sequence", f"must be below {_MAX_INT}")
    _check_sketch("body.latency", envelope.latency)
    if envelope.health is not None:
        _check_sketch("body.health.lag", envelope.health.lag)
        if envelope.health.rss_bytes is not None and not 0 <= envelope.health.rss_bytes < _MAX_INT:
            raise BatchError("body.health.rss_bytes", "out of range")
    return envelope


def parse_batch(raw: bytes) -> ParsedBatch:
    """Check a batch straight from its JSON body; raises ``BatchError`` (field, message).

    Checked: the envelope (worker, incarnation, sequence, health, latency, final) and each
    datapoint's shape (``peerId`` 1 to 200 characters, ``timestamp`` absent or epoch ms,
    ``metrics`` a JSON object, no other keys). A metrics object is kept as sent, not
    parsed into Python values: with 50 metrics a datapoint, that parse was the cost.
    """
    with collector_paused():
        return _parse_fast(raw)


_Meta = msgspec.Meta


class _Point(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    peerId: Annotated[str, _Meta(min_length=1, max_length=200)]
    timestamp: Annotated[int, _Meta(ge=0, lt=_MAX_INT)] | None = None
    metrics: msgspec.Raw


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    worker: Any = None
    incarnation: Any = None
    sequence: Any = None
    datapoints: Annotated[list[_Point], _Meta(max_length=MAX_BATCH_DATAPOINTS)] = []
    health: Any = None
    latency: Any = None
    final: Any = False


_DECODER = msgspec.json.Decoder(_Batch)
_ENCODE = msgspec.json.encode
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\[(\d+)\]")


def _msgspec_error(exc: Exception) -> BatchError:
    text = str(exc)
    match = _PATH.search(text)
    path = _STEP.sub(r".\1", match["path"]) if match else ""
    message = text[: match.start()] if match else text
    named = re.match(r"Object (missing required|contains unknown) field `([^`]*)`", message)
    in_point = path.startswith(".datapoints.") and path.count(".") == 2
    if named and in_point and named[1] == "contains unknown":
        message = "must be {peerId, timestamp?, metrics}"
    elif named:
        path += "." + named[2]
    return BatchError("body" + path, message)


def _parse_fast(raw: bytes) -> ParsedBatch:
    try:
        decoded = _DECODER.decode(raw)
        # Skipped values (the metrics) are checked for syntax, not for UTF-8 (ASCII is
        # UTF-8, and isascii() is 10 times cheaper than decoding).
        if not raw.isascii():
            str(raw, "utf-8")
    except msgspec.ValidationError as exc:
        raise _msgspec_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise BatchError("body", "not valid JSON (UTF-8)") from None
    envelope = _envelope(
        {
            "worker": decoded.worker,
            "incarnation": decoded.incarnation,
            "sequence": decoded.sequence,
            "health": decoded.health,
            "latency": decoded.latency,
            "final": decoded.final,
        }
    )
    points = decoded.datapoints
    if not points:
        return ParsedBatch(envelope, 0, None, None, b"[]")
    stamp = now_ms()
    for index, point in enumerate(points):
        if "\x00" in point.peerId:
            raise BatchError(f"body.datapoints.{index}.peerId", "a string of 1 to 200 characters")
        if memoryview(point.metrics)[0] != 0x7B:  # "{"
            raise BatchError(f"body.datapoints.{index}.metrics", "must be an object")
        if point.timestamp is None:
            point.timestamp = stamp
    stamps = [point.timestamp for point in points]
    return ParsedBatch(envelope, len(points), min(stamps), max(stamps), _ENCODE(points))


# -- storage -----------------------------------------------------------------------------


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


class GroupWriter:
    """Single datapoints from concurrent requests, stored together: one chunk per test and
    group, in one transaction.

    A commit costs far more than a datapoint, so a thousand clients each sending one
    datapoint would otherwise spend the server on commits. Each request still waits for the
    commit that holds its datapoint: an answered datapoint is a stored datapoint.
    """

    def __init__(self, store: Store, max_rows: int = 5000) -> None:
        self.store = store
        self.max_rows = max_rows
        self._pending: list[tuple[str, bytes, int, asyncio.Future]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        # SQLite: its own thread (one handoff per group, not per request, and a group's commit
        # never waits behind the shared pool's work) and its own connection, used only there.
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sa.Connection | None = None
        # PostgreSQL: its own connection, driven by the event loop itself.
        self._postgres: _PostgresChunkWriter | None = None

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
                groups: dict[str, list[tuple[bytes, int]]] = {}
                for test_id, point, timestamp, _ in taken:
                    groups.setdefault(test_id, []).append((point, timestamp))
                try:
                    if self.store.engine.dialect.name == "postgresql":
                        if self._postgres is None:
                            self._postgres = _PostgresChunkWriter(self.store.engine.url)
                        await self._postgres.store(self.store.point_group_rows(groups))
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

    def _store_groups(self, groups: dict[str, list[tuple[bytes, int]]]) -> None:
        """SQLite, on the writer's thread: one transaction for the group's chunks."""
        rows = self.store.point_group_rows(groups)
        if self._conn is None:
            self._conn = self.store.engine.connect()
        try:
            with self._conn.begin():
                insert_chunks(self._conn, rows)
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


class _PostgresChunkWriter:
    """The group writer's PostgreSQL connection, driven by the event loop (psycopg's async
    API), not by a thread.

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


@dataclass
class _Progress:
    """A running test's figures so far, for its ``abortOnFail`` thresholds: each chunk and
    batch is read once, however often the thresholds are checked."""

    metrics: set[str]
    values: MetricValues = field(default_factory=MetricValues)
    latency: DDSketch = field(default_factory=DDSketch)
    chunks: set[int] = field(default_factory=set)
    batches: set[int] = field(default_factory=set)


class Store:
    """Every load-test read and write, on one engine (SQLite or PostgreSQL)."""

    #: A started test's state is cached this long: a datapoint costs one write, not a
    #: read and a write, at the price of accepting datapoints up to this late after a
    #: finish made by another server process.
    STATE_TTL = 1.0

    def __init__(self, engine: Engine, settings: LoadTestSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._states: dict[str, tuple[float, TestState]] = {}
        self._results_lock = threading.Lock()
        self.counters = {"datapoints": 0, "batches": 0, "duplicate_batches": 0, "aborted_tests": 0}
        self.writer = GroupWriter(self)
        #: Names this process's chunks of single datapoints: (test, "", incarnation, n).
        self.incarnation = uuid.uuid4().hex
        self._sequence = itertools.count()
        self._progress: dict[str, _Progress] = {}

    # -- tests -------------------------------------------------------------------------

    def create(self, test_id: str | None, definition: dict[str, Any], started: bool) -> dict:
        stamp = now_ms()
        test_id = test_id or f"{stamp}-{''.join(secrets.choice(_ID_CHARS) for _ in range(6))}"
        row = {
            "id": test_id,
            "created": stamp,
            "started": stamp if started else None,
            "finished": None,
            "definition": json.dumps(definition),
            "results": "{}",
        }
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(loadtests.c.id).where(loadtests.c.id == test_id)
            ).first()
            if exists is None:
                try:
                    conn.execute(loadtests.insert().values(**row))
                except sa.exc.IntegrityError:
                    exists = True
        if exists is not None:
            raise FileExistsError(test_id)
        return row

    def row(self, test_id: str) -> sa.Row | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(loadtests).where(loadtests.c.id == test_id)).first()

    def state(self, test_id: str) -> TestState | None:
        cached = self._states.get(test_id)
        if cached is not None and time.monotonic() - cached[0] < self.STATE_TTL:
            return cached[1]
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(loadtests.c.started, loadtests.c.finished).where(
                    loadtests.c.id == test_id
                )
            ).first()
        if found is None:
            return None
        state = TestState(found.started, found.finished)
        if state.started is not None:
            self._states[test_id] = (time.monotonic(), state)
        return state

    async def state_async(self, test_id: str) -> TestState | None:
        cached = self._states.get(test_id)
        if cached is not None and time.monotonic() - cached[0] < self.STATE_TTL:
            return cached[1]
        return await asyncio.to_thread(self.state, test_id)

    def start(self, test_id: str) -> int:
        stamp = now_ms()
        with self.engine.begin() as conn:
            conn.execute(
                loadtests.update()
                .where(loadtests.c.id == test_id, loadtests.c.finished.is_(None))
                .values(started=stamp)
            )
        self._states.pop(test_id, None)
        return stamp

    def finish(self, test_id: str, *, aborted: dict[str, Any] | None = None) -> tuple[int, dict]:
        """Mark finished, compute and keep the summary, write ``{id}.json``.

        ``aborted``: the threshold that stopped the test during the run (kept in the
        summary; the verdict is then ``failed``). When another request or server process
        finished the test meanwhile, its finish stands and its summary is answered.
        """
        stamp = now_ms()
        row = self.row(test_id)
        assert row is not None
        summary = self.summary(test_id, end_ms=stamp, definition=json.loads(row.definition))
        if aborted is not None:
            summary["aborted"] = aborted
            summary["verdict"] = "failed"
        with self.engine.begin() as conn:
            done = conn.execute(
                loadtests.update()
                .where(loadtests.c.id == test_id, loadtests.c.finished.is_(None))
                .values(finished=stamp, summary=json.dumps(summary), verdict=summary["verdict"])
            ).rowcount
        self._states.pop(test_id, None)
        self._progress.pop(test_id, None)
        if not done:
            kept = self.row(test_id)
            assert kept is not None and kept.finished is not None
            return kept.finished, json.loads(kept.summary) if kept.summary else summary
        if aborted is not None:
            self.counters["aborted_tests"] += 1
        if self.settings.results_location is not None:
            self._persist(test_id)
        return stamp, summary

    def _persist(self, test_id: str) -> None:
        folder = self.settings.results_location
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed: a reader never sees half a file.
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{test_id}.", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for chunk in self.whole_test_json(test_id):
                    out.write(chunk)
            os.replace(temporary, folder / f"{test_id}.json")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _chunks(
        self, conn: sa.Connection, test_id: str, *, from_id: int = 0
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

    def iter_datapoints(self, test_id: str) -> Iterator[dict[str, Any]]:
        """Every datapoint of a test, ``{"peerId","timestamp","metrics"}``, in storage order."""
        with self.engine.connect() as conn:
            for _, _, data in self._chunks(conn, test_id):
                yield from read_points(data)

    def whole_test_json(self, test_id: str) -> Iterator[str]:
        """The test in the original shape, as JSON text, without parsing stored metrics."""
        row = self.row(test_id)
        assert row is not None
        yield '{"id":' + json.dumps(row.id) + ',"dataPoints":['
        first = True
        with self.engine.connect() as conn:
            for _, count, data in self._chunks(conn, test_id):
                if not count:
                    continue
                yield ("" if first else ",") + _chunk_items(data).decode()
                first = False
            topology = conn.execute(
                sa.select(loadtest_topology.c.timestamp, loadtest_topology.c.topology)
                .where(loadtest_topology.c.test_id == test_id)
                .order_by(loadtest_topology.c.id)
            ).all()
        yield "]"
        if row.started is not None:
            yield f',"started":{row.started}'
        yield ',"results":' + row.results
        yield (
            ',"topologyDataPoints":['
            + ",".join(f'{{"timestamp":{t},"topology":{body}}}' for t, body in topology)
            + "]"
        )
        if row.finished is not None:
            yield f',"finished":{row.finished}'
        yield "}"

    # -- data ------------------------------------------------------------------------

    async def add_datapoint(self, test_id: str, peer_id: str, metrics: Any) -> dict:
        """One datapoint stamped now; answers it once it is committed."""
        _, point = await self.add_datapoint_json(test_id, peer_id, metrics)
        return point

    async def add_datapoint_json(
        self, test_id: str, peer_id: str, metrics: Any
    ) -> tuple[bytes, dict]:
        stamp = now_ms()
        try:
            text = _dumpb(metrics)
        except (TypeError, ValueError):
            metrics, text = {}, b"{}"
        encoded = b'{"peerId":%b,"timestamp":%d,"metrics":%b}' % (_dumpb(peer_id), stamp, text)
        await self.writer.write(test_id, encoded, stamp)
        self.counters["datapoints"] += 1
        return encoded, {"peerId": peer_id, "timestamp": stamp, "metrics": metrics}

    def point_group_rows(self, groups: dict[str, list[tuple[bytes, int]]]) -> list[dict[str, Any]]:
        """Single datapoints, ``{test id: [(datapoint JSON, timestamp)]}``, as chunk rows: one
        per test (the group writer stores them in one transaction)."""
        rows = []
        for test_id, points in groups.items():
            stamps = [t for _, t in points]
            codec, blob = encode_chunk(b"[" + b",".join(p for p, _ in points) + b"]")
            rows.append(
                {
                    "test_id": test_id,
                    "worker": "",
                    "incarnation": self.incarnation,
                    "sequence": next(self._sequence),
                    "first_timestamp": min(stamps),
                    "last_timestamp": max(stamps),
                    "count": len(points),
                    "codec": codec,
                    "data": blob,
                }
            )
        return rows

    def add_batch(self, test_id: str, batch: ParsedBatch) -> tuple[int, bool]:
        """Store a batch once; answers (datapoints accepted, duplicate). Blocking: call it
        from a thread (``ingest_batch`` does)."""
        stamp = now_ms()
        envelope = batch.envelope
        if batch.count:
            # Compressed before the transaction, and outside the GIL (lz4 lets go of it).
            codec, blob = encode_chunk(batch.data)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    loadtest_batches.insert().values(
                        test_id=test_id,
                        worker=envelope.worker,
                        incarnation=envelope.incarnation,
                        sequence=envelope.sequence,
                        received_at=stamp,
                        datapoints=batch.count,
                        final=envelope.final,
                        health=envelope.health.model_dump_json() if envelope.health else None,
                        latency=json.dumps(envelope.latency) if envelope.latency else None,
                    )
                )
                if batch.count:
                    insert_chunks(
                        conn,
                        [
                            {
                                "test_id": test_id,
                                "worker": envelope.worker,
                                "incarnation": envelope.incarnation,
                                "sequence": envelope.sequence,
                                "first_timestamp": batch.first_timestamp,
                                "last_timestamp": batch.last_timestamp,
                                "count": batch.count,
                                "codec": codec,
                                "data": blob,
                            }
                        ],
                    )
        except sa.exc.IntegrityError:
            # The batch row is inserted first in the same transaction: when its key exists,
            # nothing of this copy was kept.
            self.counters["duplicate_batches"] += 1
            return 0, True
        self.counters["batches"] += 1
        self.counters["datapoints"] += batch.count
        return batch.count, False

    def add_results(self, test_id: str, peer_id: str, body: dict) -> dict:
        entry = {**body, "timestamp": now_ms()}
        with self._results_lock, self.engine.begin() as conn:
            current = conn.execute(
                sa.select(loadtests.c.results).where(loadtests.c.id == test_id).with_for_update()
            ).scalar_one()
            results = json.loads(current)
            results[peer_id] = entry
            conn.execute(
                loadtests.update()
                .where(loadtests.c.id == test_id)
                .values(results=json.dumps(results))
            )
        return entry

    def add_topology(self, test_id: str, topology: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                loadtest_topology.insert().values(
                    test_id=test_id, timestamp=now_ms(), topology=json.dumps(topology)
                )
            )

    # -- reading ---------------------------------------------------------------------

    def info(self, row: sa.Row) -> LoadTestInfo:
        definition = json.loads(row.definition)
        with self.engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(loadtest_chunks.c.count), 0)).where(
                    loadtest_chunks.c.test_id == row.id
                )
            ).scalar_one()
        status = "finished" if row.finished else ("started" if row.started else "created")
        return LoadTestInfo(
            id=row.id,
            created=row.created,
            started=row.started,
            finished=row.finished,
            status=status,
            description=definition.get("description"),
            duration=definition.get("duration"),
            peers=definition.get("peers"),
            thresholds=definition.get("thresholds") or {},
            datapoints=int(count),
            verdict=row.verdict,
        )

    def list(self, limit: int) -> list[LoadTestInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(loadtests).order_by(loadtests.c.created.desc()).limit(limit)
            ).all()
        return [self.info(r) for r in rows]

    def summary(self, test_id: str, *, end_ms: int, definition: dict) -> dict:
        values = MetricValues()
        workers: dict[str, WorkerReport] = {}
        latency = DDSketch()
        with self.engine.connect() as conn:
            for _, _, data in self._chunks(conn, test_id):
                with collector_paused():
                    values.add_points(read_points(data))
            batches = conn.execute(
                sa.select(loadtest_batches).where(loadtest_batches.c.test_id == test_id)
            ).all()
        for batch in batches:
            report = workers.setdefault(batch.worker, WorkerReport(batch.worker))
            report.add_batch(
                incarnation=batch.incarnation,
                received_at=batch.received_at,
                datapoints=batch.datapoints,
                final=bool(batch.final),
                health=json.loads(batch.health) if batch.health else None,
            )
            if batch.latency:
                latency.merge(DDSketch.from_dict(json.loads(batch.latency)))
        return summarize(
            values,
            sorted(workers.values(), key=lambda w: w.name),
            latency,
            definition.get("thresholds"),
            end_ms=end_ms,
            missing_after_ms=self.settings.missing_after_ms,
        )

    def datapoints_after(self, test_id: str, after: int, limit: int) -> list[dict]:
        """Datapoints in storage order after the cursor ``after`` (0: from the start); each
        has an ``id``, the cursor to pass next (a chunk id and a position in it)."""
        first_chunk, seen = divmod(after, _CURSOR_SPAN)
        out: list[dict] = []
        with self.engine.connect() as conn:
            for chunk_id, count, data in self._chunks(conn, test_id, from_id=first_chunk):
                skip = seen if chunk_id == first_chunk else 0
                if skip >= count:
                    continue
                for index, point in enumerate(read_points(data)[skip:], start=skip):
                    out.append({"id": chunk_id * _CURSOR_SPAN + index + 1, **point})
                    if len(out) >= limit:
                        return out
        return out

    # -- thresholds during the run ---------------------------------------------------------

    def check_running(self) -> list[tuple[str, dict]]:
        """Check every running test's ``abortOnFail`` thresholds; finish (abort) the tests
        where one fails. Answers the aborted tests and why."""
        with self.engine.connect() as conn:
            running = conn.execute(
                sa.select(loadtests.c.id, loadtests.c.started, loadtests.c.definition).where(
                    loadtests.c.started.is_not(None), loadtests.c.finished.is_(None)
                )
            ).all()
        for gone in set(self._progress) - {r.id for r in running}:
            del self._progress[gone]
        aborted = []
        for test_id, started, definition in running:
            try:
                reason = self.check_test(test_id, started, json.loads(definition))
            except ThresholdError:
                continue  # a test made through the original routes with a bad threshold
            if reason is not None:
                self.finish(test_id, aborted=reason)
                log.warning("load test %s aborted: %s", test_id, reason["threshold"])
                aborted.append((test_id, reason))
        return aborted

    def check_test(self, test_id: str, started: int, definition: dict) -> dict | None:
        """The first ``abortOnFail`` threshold failing on the data so far, or None."""
        wanted = [t for t in parse_all(definition.get("thresholds") or {}) if t.abort_on_fail]
        if not wanted:
            return None
        progress = self._progress.get(test_id)
        if progress is None:
            progress = self._progress[test_id] = _Progress({t.metric for t in wanted})
        self._catch_up(test_id, progress)
        now = now_ms()
        extra = [t.percentile for t in wanted if t.percentile is not None]
        figures = progress.values.aggregates(extra, names=progress.metrics)
        latency = latency_figures(progress.latency, extra)
        for t in wanted:
            if now - started < t.delay_abort_eval * 1000:
                continue
            outcome = thr.evaluate(t, latency if t.metric == "latency" else figures.get(t.metric))
            if outcome.observed is not None and not outcome.passed:
                return {
                    "threshold": f"{t.metric}: {t.expression}",
                    "metric": t.metric,
                    "expression": t.expression,
                    "observed": outcome.observed,
                    "at": now,
                }
        return None

    def _catch_up(self, test_id: str, progress: _Progress) -> None:
        c, b = loadtest_chunks.c, loadtest_batches.c
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(c.id).where(c.test_id == test_id)).scalars().all()
            new = sorted(set(ids) - progress.chunks)
            for start in range(0, len(new), 200):
                part = new[start : start + 200]
                rows = conn.execute(
                    sa.select(c.id, c.codec, c.data).where(c.id.in_(part)).order_by(c.id)
                )
                for chunk_id, codec, blob in rows:
                    with collector_paused():
                        progress.values.add_points(
                            read_points(decode_chunk(codec, blob)), progress.metrics
                        )
                    progress.chunks.add(chunk_id)
            if "latency" in progress.metrics:
                batches = conn.execute(
                    sa.select(b.id, b.latency).where(b.test_id == test_id, b.latency.is_not(None))
                ).all()
                for batch_id, latency in batches:
                    if batch_id not in progress.batches:
                        progress.latency.merge(DDSketch.from_dict(json.loads(latency)))
                        progress.batches.add(batch_id)


# -- ingest, for every transport ---------------------------------------------------------


class IngestRefused(Exception):
    """A batch for a test that cannot take it: ``status`` 404 or 409, ``code`` as the
    original harness names it (``test-not-found``, ``test-not-started``,
    ``test-already-finished``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


async def ingest_batch(app: Any, test_id: str, batch: ParsedBatch) -> BatchAck:
    """Store a parsed batch for ``test_id`` (the batch names its worker, incarnation and
    sequence), relay it, and acknowledge: ``BatchAck(accepted, duplicate)``.

    The one way in for batches, whatever the transport (``POST .../datapoints``, gRPC):
    ``app`` is the server's app (or anything with ``.state.loadtests`` and
    ``.state.loadtest_relay``). The answer comes after the commit: an acknowledged
    datapoint is a stored datapoint. A batch already stored (same test, worker,
    incarnation, sequence) is answered ``accepted=0, duplicate=True``. Raises
    ``IngestRefused`` for an unknown, unstarted or finished test.
    """
    store: Store = app.state.loadtests
    state = await store.state_async(test_id)
    if state is None:
        raise IngestRefused(404, "test-not-found", f"no load test {test_id!r} (test-not-found)")
    if state.started is None:
        raise IngestRefused(409, "test-not-started", "the test is not started (test-not-started)")
    if state.finished is not None:
        raise IngestRefused(
            409, "test-already-finished", "the test is finished already (test-already-finished)"
        )
    accepted, duplicate = await asyncio.to_thread(store.add_batch, test_id, batch)
    if accepted:
        app.state.loadtest_relay.offer_chunk(
            test_id, f"{batch.envelope.worker}\x00{batch.envelope.incarnation}", batch.data,
            batch.count,
        )  # fmt: skip
    return BatchAck(accepted=accepted, duplicate=duplicate)


# -- authentication ---------------------------------------------------------------------


def _has_token(request: Request) -> bool:
    token = request.app.state.loadtests.settings.token
    given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token")
    return bool(token and given and secrets.compare_digest(token, given))


def v1_writer(request: Request, who: Principal = Depends(principal)) -> None:
    permissions.may_write_loadtests(who, token_given=_has_token(request))


async def compat_writer(request: Request) -> None:
    """Open like the original, or the load-test token only: no database work per request
    (and async: a plain function would cost a trip through the thread pool per request)."""
    if request.app.state.loadtests.settings.compat_auth == "open" or _has_token(request):
        return
    raise HTTPException(
        401, f"this server needs the load-test token ({TOKEN_HEADER} header or ?token=)"
    )


# -- the original harness's API -------------------------------------------------------

compat = APIRouter(tags=["load tests (original harness)"])


def _answer(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_CORS)


def _defined(**fields: Any) -> dict:
    # The original was JavaScript: undefined fields are left out of its answers.
    return {k: v for k, v in fields.items() if v is not None}


def _store(request: Request) -> Store:
    return request.app.state.loadtests


def _refusal_body(state: TestState | None) -> tuple[int, dict] | None:
    if state is None:
        return 404, NOT_FOUND
    if state.started is None:
        return 400, NOT_STARTED
    if state.finished is not None:
        return 400, ALREADY_FINISHED
    return None


def _refusal(state: TestState | None) -> JSONResponse | None:
    refused = _refusal_body(state)
    return None if refused is None else _answer(refused[1], refused[0])


def _ongoing(store: Store, test_id: str) -> JSONResponse | None:
    return _refusal(store.state(test_id))


@compat.get("/status")
async def status() -> JSONResponse:
    return _answer({"status": "ok"})


@compat.options("/test")
@compat.options("/test/{rest:path}")
@compat.options("/status")
async def preflight() -> Response:
    return Response(status_code=204, headers=_CORS)


def _json_value(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return _loads(raw)
    except ValueError:
        return None


async def _json_body(request: Request) -> Any:
    return _json_value(await request.body())


def _create(request: Request, test_id: str | None, body: Any) -> JSONResponse:
    if test_id is not None and not _SAFE_ID.match(test_id):
        # The id becomes a file name ({id}.json): only characters safe in every file system.
        return _answer(INVALID_ID, 400)
    started = bool(isinstance(body, dict) and body.get("started"))
    definition = {}
    if isinstance(body, dict) and isinstance(body.get("thresholds"), dict):
        definition["thresholds"] = body["thresholds"]
    try:
        row = _store(request).create(test_id, definition, started)
    except FileExistsError:
        existing = _store(request).row(test_id or "")
        return _answer(_defined(id=test_id, started=existing.started if existing else None))
    return _answer(_defined(id=row["id"], started=row["started"]))


@compat.post("/test", dependencies=[Depends(compat_writer)])
async def create_random(request: Request) -> JSONResponse:
    return _create(request, None, await _json_body(request))


@compat.post("/test/{test_id}", dependencies=[Depends(compat_writer)])
async def create_named(test_id: str, request: Request) -> JSONResponse:
    return _create(request, test_id, await _json_body(request))


@compat.get("/test/{test_id}")
def get_test(test_id: str, request: Request, dataPoints: str | None = None) -> Response:
    store = _store(request)
    row = store.row(test_id)
    if row is None:
        return _answer(NOT_FOUND, 404)
    if dataPoints == "true":
        return Response(
            "".join(store.whole_test_json(test_id)), media_type="application/json", headers=_CORS
        )
    return _answer(_defined(id=row.id, started=row.started, finished=row.finished))


@compat.put("/test/{test_id}/start", dependencies=[Depends(compat_writer)])
def start_test(test_id: str, request: Request) -> JSONResponse:
    store = _store(request)
    row = store.row(test_id)
    if row is None:
        return _answer(NOT_FOUND, 404)
    if row.finished is not None:
        return _answer(ALREADY_FINISHED, 400)
    return _answer({"id": test_id, "started": store.start(test_id)})


@compat.put("/test/{test_id}/finish", dependencies=[Depends(compat_writer)])
def finish_test(test_id: str, request: Request) -> Response:
    store = _store(request)
    refused = _ongoing(store, test_id)
    if refused is not None:
        return refused
    store.finish(test_id)
    return Response(
        "".join(store.whole_test_json(test_id)), media_type="application/json", headers=_CORS
    )


async def put_metrics_body(app: Any, test_id: str, peer_id: str, raw: bytes) -> tuple[int, bytes]:
    """``PUT /test/{id}/peer/{peerId}/metrics``: (status, JSON answer), after the commit."""
    store: Store = app.state.loadtests
    refused = _refusal_body(await store.state_async(test_id))
    if refused is not None:
        return refused[0], _dumpb(refused[1])
    body = _json_value(raw)
    encoded, point = await store.add_datapoint_json(
        test_id, peer_id, body if body is not None else {}
    )
    app.state.loadtest_relay.offer(test_id, [point])
    return 200, encoded


@compat.put("/test/{test_id}/peer/{peer_id}/metrics", dependencies=[Depends(compat_writer)])
async def put_metrics(test_id: str, peer_id: str, request: Request) -> Response:
    status, body = await put_metrics_body(request.app, test_id, peer_id, await request.body())
    return Response(body, status_code=status, media_type="application/json", headers=_CORS)


@compat.put("/test/{test_id}/peer/{peer_id}/results", dependencies=[Depends(compat_writer)])
async def put_results(test_id: str, peer_id: str, request: Request) -> JSONResponse:
    store = _store(request)
    body = await _json_body(request)
    refused = _ongoing(store, test_id)
    if refused is not None:
        return refused
    return _answer(store.add_results(test_id, peer_id, body if isinstance(body, dict) else {}))


@compat.put("/test/{test_id}/topology", dependencies=[Depends(compat_writer)])
async def put_topology(test_id: str, request: Request) -> JSONResponse:
    store = _store(request)
    body = await _json_body(request)
    refused = _ongoing(store, test_id)
    if refused is not None:
        return refused
    store.add_topology(test_id, body)
    state = store.state(test_id)
    return _answer(_defined(id=test_id, started=state.started if state else None))


_METRICS_PATH = re.compile(r"^/test/([^/]+)/peer/([^/]+)/metrics$")
_FAST_HEADERS = [
    (b"content-type", b"application/json"),
    *((k.lower().encode(), v.encode()) for k, v in _CORS.items()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class FastMetricsPut:
    """``PUT /test/{id}/peer/{peerId}/metrics`` straight from the ASGI server.

    The original harness's clients send one datapoint per request, thousands a second;
    through the framework (its telemetry and error layers, routing among a hundred routes,
    dependencies, middleware that resolves credentials in a thread) a request cost three
    times its own work. Only requests that the middleware would have passed unchanged are
    answered here: no ``Authorization`` or cookie (so nothing to resolve), a
    ``Content-Length`` within the server's limit and no ``Content-Encoding``, a farm that is
    not private, and the compatible routes open or the load-test token given. Everything
    else takes the ordinary way, to the same handler (``put_metrics_body``), so both answer
    alike; a database that is down is a 503 on both.
    """

    _SKIP = frozenset((b"authorization", b"cookie", b"content-encoding", b"transfer-encoding"))
    _TOKEN = TOKEN_HEADER.lower().encode()

    def __init__(self, app: Any, *, server: FastAPI, max_body: int, private: bool) -> None:
        self.app = app
        self.server = server
        self.max_body = max_body
        self.private = private

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "PUT"
            or self.private
            or not scope["path"].endswith("/metrics")
        ):
            await self.app(scope, receive, send)
            return
        match = _METRICS_PATH.match(scope["path"])
        length = token = None
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name in self._SKIP:
                match = None
            elif name == self._TOKEN:
                token = value.decode("latin-1")
        store: Store = self.server.state.loadtests
        settings = store.settings
        if settings.compat_auth != "open" and not (
            token and settings.token and secrets.compare_digest(token, settings.token)
        ):
            match = None
        if match is None or length is None or length > self.max_body:
            await self.app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if message.get("more_body", False):
            parts = [body]
            while message.get("more_body", False):
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                parts.append(message.get("body", b""))
            body = b"".join(parts)
        elif message["type"] == "http.disconnect":
            return
        try:
            status, answer = await put_metrics_body(self.server, match[1], match[2], body)
        except sa.exc.OperationalError:
            status = 503
            answer = b'{"detail":"the database is unavailable; retry later","errors":[]}'
        except Exception:
            log.exception("PUT %s failed", scope["path"])
            status, answer = 500, b'{"detail":"internal server error","errors":[]}'
        headers = [*_FAST_HEADERS, (b"content-length", b"%d" % len(answer))]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        if scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


# -- /api/v1/loadtests ------------------------------------------------------------------

v1 = APIRouter(prefix="/loadtests", tags=["load tests"])


def _found(store: Store, test_id: str) -> sa.Row:
    row = store.row(test_id)
    if row is None:
        raise HTTPException(404, f"no load test {test_id!r} (test-not-found)")
    return row


@v1.get("", response_model=list[LoadTestInfo])
def list_tests(request: Request, limit: int = Query(100, ge=1, le=1000)) -> list[LoadTestInfo]:
    """Load tests, newest first."""
    return _store(request).list(limit)


@v1.post("", response_model=LoadTestInfo, status_code=201, dependencies=[Depends(v1_writer)])
def create_test(body: LoadTestCreate, request: Request) -> LoadTestInfo:
    """Create a test (with thresholds; ``abortOnFail`` ones are checked during the run);
    ``started: true`` starts it at once."""
    definition = body.model_dump(exclude={"id", "started"}, exclude_none=True)
    try:
        parse_all(definition.get("thresholds") or {})
    except ThresholdError as exc:
        raise HTTPException(422, str(exc)) from None
    store = _store(request)
    try:
        row = store.create(body.id, definition, body.started)
    except FileExistsError:
        raise HTTPException(409, f"a load test {body.id!r} exists already") from None
    return store.info(_found(store, row["id"]))


@v1.get("/{test_id}", response_model=LoadTestInfo)
def get_info(test_id: str, request: Request) -> LoadTestInfo:
    store = _store(request)
    return store.info(_found(store, test_id))


@v1.post("/{test_id}/start", response_model=LoadTestInfo, dependencies=[Depends(v1_writer)])
def start(test_id: str, request: Request) -> LoadTestInfo:
    store = _store(request)
    if _found(store, test_id).finished is not None:
        raise HTTPException(409, "the test is finished already (test-already-finished)")
    store.start(test_id)
    return store.info(_found(store, test_id))


@v1.post("/{test_id}/finish", dependencies=[Depends(v1_writer)])
def finish(test_id: str, request: Request) -> dict:
    """Finish the test: the summary and verdict are computed and kept."""
    store = _store(request)
    row = _found(store, test_id)
    if row.started is None:
        raise HTTPException(409, "the test was never started (test-not-started)")
    if row.finished is not None:
        raise HTTPException(409, "the test is finished already (test-already-finished)")
    _, summary = store.finish(test_id)
    return {"test": store.info(_found(store, test_id)).model_dump(), "summary": summary}


def _batch_schema() -> dict:
    """DatapointBatch's JSON Schema with its definitions inlined, for the OpenAPI document."""
    schema = DatapointBatch.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


@v1.post(
    "/{test_id}/datapoints",
    response_model=BatchAck,
    dependencies=[Depends(v1_writer)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _batch_schema()}},
        }
    },
)
async def add_datapoints(test_id: str, request: Request) -> BatchAck:
    """A worker's batch; a batch already stored (same worker, incarnation, sequence) counts once."""
    raw = await request.body()
    try:
        batch = await asyncio.to_thread(parse_batch, raw)
    except BatchError as exc:
        raise HTTPException(422, f"invalid batch: {exc}") from None
    try:
        return await ingest_batch(request.app, test_id, batch)
    except IngestRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None


@v1.get("/{test_id}/datapoints")
def read_datapoints(
    test_id: str,
    request: Request,
    after: int = Query(
        0, ge=0, le=2**62, description="Only datapoints after this cursor (`next_after`)."
    ),
    limit: int = Query(1000, ge=1, le=10000),
) -> dict:
    store = _store(request)
    _found(store, test_id)
    points = store.datapoints_after(test_id, after, limit)
    return {"datapoints": points, "next_after": points[-1]["id"] if points else after}


@v1.get("/{test_id}/summary")
def get_summary(test_id: str, request: Request) -> dict:
    """The kept summary of a finished test; a running test's summary so far."""
    store = _store(request)
    row = _found(store, test_id)
    if row.summary:
        return json.loads(row.summary)
    return store.summary(test_id, end_ms=now_ms(), definition=json.loads(row.definition))


# -- Prometheus --------------------------------------------------------------------------

metrics_router = APIRouter(tags=["load tests"])


@metrics_router.get("/metrics")
def prometheus(request: Request) -> Response:
    """Prometheus text format: this process's load-test ingest and relay counters."""
    store = _store(request)
    relay = request.app.state.loadtest_relay
    lines = []
    for name, value in [*store.counters.items(), *relay.counters.items()]:
        metric = f"perffarm_loadtest_{name}_total"
        lines += [f"# TYPE {metric} counter", f"{metric} {value}"]
    lines += relay.prometheus_gauges()
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


# -- wiring ------------------------------------------------------------------------------


def install(app: FastAPI, engine: Engine, settings: LoadTestSettings | None = None) -> None:
    """The load-test store and relays on the app's state (the routers are mounted by the
    composition root)."""
    settings = settings or LoadTestSettings.from_env()
    if settings.compat_auth not in COMPAT_AUTH_MODES:
        raise ValueError(f"load-test compat auth must be one of {', '.join(COMPAT_AUTH_MODES)}")
    app.state.loadtests = Store(engine, settings)
    app.state.loadtest_relay = relays.Relays(settings.influx_url, settings.influx_db)


async def _check_thresholds(store: Store) -> None:
    """Every ``check_every`` seconds: running tests' ``abortOnFail`` thresholds."""
    while True:
        await asyncio.sleep(store.settings.check_every)
        try:
            await asyncio.to_thread(store.check_running)
        except Exception:  # a check must never stop the server; the next one tries again
            log.exception("load tests: checking thresholds during the run failed")


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """The relays' background sender and the threshold checks live as long as the server."""
    relay: relays.Relays = app.state.loadtest_relay
    store: Store = app.state.loadtests
    await relay.start()
    checker = asyncio.create_task(_check_thresholds(store), name="perffarm-loadtest-thresholds")
    try:
        yield
    finally:
        checker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checker
        await store.writer.stop()
        await relay.stop()
