"""Load tests on the results server: storage, the original harness's API, ``/api/v1/loadtests``.

The original results server kept tests in memory and wrote ``{id}.json`` on finish. Here a
test lives in the database from its creation (so a restart loses nothing and several server
processes share it) and is still written to ``{results_location}/{id}.json`` on finish, in
the original shape, for the tools that read those files.

The compatible routes answer exactly as the original did, errors included
(``{"status": "test-not-found"}``), and send open CORS headers; they are open by default
and can require a token. The ``/api/v1`` routes always need credentials to write.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import secrets
import string
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from perffarm.loadtest import relays
from perffarm.loadtest.sketch import DDSketch
from perffarm.loadtest.summary import (
    DEFAULT_MISSING_AFTER_MS,
    MetricValues,
    WorkerReport,
    summarize,
)
from perffarm.loadtest.thresholds import ThresholdError, parse_all
from perffarm.model.api import API_PREFIX
from perffarm.model.loadtest import (
    MAX_BATCH_DATAPOINTS,
    TEST_ID_PATTERN,
    BatchAck,
    DatapointBatch,
    LoadTestCreate,
    LoadTestInfo,
)
from perffarm.server.api import deps
from perffarm.server.db.tables import (
    loadtest_batches,
    loadtest_datapoints,
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
TOKEN_HEADER = "X-Perffarm-Loadtest-Token"
COMPAT_AUTH_MODES = ("open", "token")

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


try:
    import orjson

    def _loads(raw: bytes) -> Any:
        return orjson.loads(raw)

    def _dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

except ImportError:  # the loadtest extra brings orjson; plain json is the slow fallback

    def _loads(raw: bytes) -> Any:
        return json.loads(raw)

    def _dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)


_INSERT_COLUMNS = "test_id, peer_id, timestamp, metrics"


def _insert_rows(conn: sa.Connection, rows: list[tuple[str, str, int, str]]) -> None:
    """Datapoint rows through the driver: ingest speed is the point of a batch.

    SQLAlchemy's executemany builds a parameter dict per row; at 100,000 rows a second
    that is most of the time. PostgreSQL gets COPY, SQLite the driver's executemany.
    """
    raw = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            copy_sql = f"COPY loadtest_datapoints ({_INSERT_COLUMNS}) FROM STDIN"
            with cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        return
    cursor = raw.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO loadtest_datapoints ({_INSERT_COLUMNS}) VALUES (?, ?, ?, ?)", rows
        )
    finally:
        cursor.close()


class BatchError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class ParsedBatch:
    envelope: DatapointBatch
    #: (peer id, timestamp or None, metrics as JSON text, metrics)
    points: list[tuple[str, int | None, str, dict]]


_MAX_INT = 2**53


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


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A batch makes tens of thousands of acyclic objects at once; the cyclic collector
    would scan them again and again while they are made (40 % of the parse time, measured).
    They hold no cycles, so pausing it costs nothing; it is process-wide, hence brief."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_batch(raw: bytes) -> ParsedBatch:
    """Check a batch straight from its JSON; each metrics object is re-encoded once."""
    with _collector_paused():
        return _parse_batch(raw)


def _parse_batch(raw: bytes) -> ParsedBatch:
    try:
        data = _loads(raw)
    except ValueError:
        raise BatchError("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise BatchError("body", "must be a JSON object")
    points = data.get("datapoints", [])
    if not isinstance(points, list):
        raise BatchError("body.datapoints", "must be a list")
    if len(points) > MAX_BATCH_DATAPOINTS:
        raise BatchError("body.datapoints", f"at most {MAX_BATCH_DATAPOINTS} per batch")
    try:
        envelope = DatapointBatch.model_validate({**data, "datapoints": []})
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
    parsed = []
    for index, point in enumerate(points):
        where = f"body.datapoints.{index}"
        if not isinstance(point, dict) or not set(point) <= {"peerId", "timestamp", "metrics"}:
            raise BatchError(where, "must be {peerId, timestamp?, metrics}")
        peer = point.get("peerId")
        if not isinstance(peer, str) or not 0 < len(peer) <= 200 or "\x00" in peer:
            raise BatchError(f"{where}.peerId", "a string of 1 to 200 characters")
        timestamp = point.get("timestamp")
        if timestamp is not None and (
            not isinstance(timestamp, int) or isinstance(timestamp, bool)
            or not 0 <= timestamp < _MAX_INT
        ):  # fmt: skip
            raise BatchError(f"{where}.timestamp", "epoch milliseconds (an integer)")
        metrics = point.get("metrics")
        if not isinstance(metrics, dict):
            raise BatchError(f"{where}.metrics", "must be an object")
        try:
            text = _dumps(metrics)
        except (TypeError, ValueError):
            raise BatchError(f"{where}.metrics", "cannot be stored as JSON") from None
        parsed.append((peer, timestamp, text, metrics))
    return ParsedBatch(envelope, parsed)


class GroupWriter:
    """Single datapoints from concurrent requests, written together in one transaction.

    A commit costs far more than a row, so a thousand clients each sending one datapoint
    would otherwise spend the server on commits. Each request still waits for the commit
    that holds its row: an answered datapoint is a stored datapoint.
    """

    def __init__(self, engine: Engine, max_rows: int = 5000) -> None:
        self.engine = engine
        self.max_rows = max_rows
        self._pending: list[tuple[dict, asyncio.Future]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def write(self, row: dict) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="perffarm-loadtest-writer")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
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
                try:
                    await asyncio.to_thread(self._insert, [row for row, _ in taken])
                except Exception as exc:
                    for _, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in taken:
                        if not future.done():
                            future.set_result(None)

    def _insert(self, rows: list[dict]) -> None:
        with self.engine.begin() as conn:
            conn.execute(loadtest_datapoints.insert(), rows)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


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
        self.counters = {"datapoints": 0, "batches": 0, "duplicate_batches": 0}
        self.writer = GroupWriter(engine)

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

    def finish(self, test_id: str) -> tuple[int, dict]:
        """Mark finished, compute and keep the summary, write ``{id}.json``."""
        stamp = now_ms()
        row = self.row(test_id)
        assert row is not None
        summary = self.summary(test_id, end_ms=stamp, definition=json.loads(row.definition))
        with self.engine.begin() as conn:
            conn.execute(
                loadtests.update()
                .where(loadtests.c.id == test_id)
                .values(finished=stamp, summary=json.dumps(summary), verdict=summary["verdict"])
            )
        self._states.pop(test_id, None)
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

    def whole_test_json(self, test_id: str) -> Iterator[str]:
        """The test in the original shape, as JSON text, without parsing stored metrics."""
        row = self.row(test_id)
        assert row is not None
        yield '{"id":' + json.dumps(row.id) + ',"dataPoints":['
        first = True
        with self.engine.connect() as conn:
            rows = conn.execution_options(yield_per=5000).execute(
                sa.select(
                    loadtest_datapoints.c.peer_id,
                    loadtest_datapoints.c.timestamp,
                    loadtest_datapoints.c.metrics,
                )
                .where(loadtest_datapoints.c.test_id == test_id)
                .order_by(loadtest_datapoints.c.id)
            )
            for peer_id, timestamp, metrics in rows:
                yield ("" if first else ",") + (
                    f'{{"peerId":{json.dumps(peer_id)},"timestamp":{timestamp},'
                    f'"metrics":{metrics}}}'
                )
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
        stamp = now_ms()
        try:
            text = _dumps(metrics)
        except (TypeError, ValueError):
            text = "{}"
        await self.writer.write(
            {"test_id": test_id, "peer_id": peer_id, "timestamp": stamp, "metrics": text}
        )
        self.counters["datapoints"] += 1
        return {"peerId": peer_id, "timestamp": stamp, "metrics": metrics}

    async def state_async(self, test_id: str) -> TestState | None:
        cached = self._states.get(test_id)
        if cached is not None and time.monotonic() - cached[0] < self.STATE_TTL:
            return cached[1]
        return await asyncio.to_thread(self.state, test_id)

    def add_batch(self, test_id: str, batch: ParsedBatch) -> tuple[int, bool]:
        """Store a batch once; answers (datapoints accepted, duplicate)."""
        stamp = now_ms()
        envelope = batch.envelope
        rows = [
            (test_id, peer, timestamp if timestamp is not None else stamp, text)
            for peer, timestamp, text, _ in batch.points
        ]
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    loadtest_batches.insert().values(
                        test_id=test_id,
                        worker=envelope.worker,
                        incarnation=envelope.incarnation,
                        sequence=envelope.sequence,
                        received_at=stamp,
                        datapoints=len(rows),
                        final=envelope.final,
                        health=envelope.health.model_dump_json() if envelope.health else None,
                        latency=json.dumps(envelope.latency) if envelope.latency else None,
                    )
                )
                if rows:
                    _insert_rows(conn, rows)
        except sa.exc.IntegrityError:
            # The batch row is inserted first in the same transaction: when its key exists,
            # nothing of this copy was kept.
            self.counters["duplicate_batches"] += 1
            return 0, True
        self.counters["batches"] += 1
        self.counters["datapoints"] += len(rows)
        return len(rows), False

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
                sa.select(sa.func.count())
                .select_from(loadtest_datapoints)
                .where(loadtest_datapoints.c.test_id == row.id)
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
            datapoints=count,
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
            rows = conn.execution_options(yield_per=5000).execute(
                sa.select(loadtest_datapoints.c.peer_id, loadtest_datapoints.c.metrics).where(
                    loadtest_datapoints.c.test_id == test_id
                )
            )
            for peer_id, metrics in rows:
                parsed = json.loads(metrics)
                if isinstance(parsed, dict):
                    values.add(peer_id, parsed)
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
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(loadtest_datapoints)
                .where(loadtest_datapoints.c.test_id == test_id, loadtest_datapoints.c.id > after)
                .order_by(loadtest_datapoints.c.id)
                .limit(limit)
            ).all()
        return [
            {
                "id": r.id,
                "peerId": r.peer_id,
                "timestamp": r.timestamp,
                "metrics": json.loads(r.metrics),
            }
            for r in rows
        ]


# -- authentication ---------------------------------------------------------------------


def _has_token(request: Request) -> bool:
    token = request.app.state.loadtests.settings.token
    given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token")
    return bool(token and given and secrets.compare_digest(token, given))


def v1_writer(request: Request, who: deps.Caller = Depends(deps.caller)) -> None:
    if not (_has_token(request) or who.admin or who.machine or getattr(who, "user", None)):
        raise HTTPException(
            401,
            f"writing load tests needs the load-test token ({TOKEN_HEADER} header), the admin "
            "token or a machine's credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )


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


def _refusal(state: TestState | None) -> JSONResponse | None:
    if state is None:
        return _answer(NOT_FOUND, 404)
    if state.started is None:
        return _answer(NOT_STARTED, 400)
    if state.finished is not None:
        return _answer(ALREADY_FINISHED, 400)
    return None


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


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return _loads(raw)
    except ValueError:
        return None


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


@compat.put("/test/{test_id}/peer/{peer_id}/metrics", dependencies=[Depends(compat_writer)])
async def put_metrics(test_id: str, peer_id: str, request: Request) -> JSONResponse:
    store = _store(request)
    body = await _json_body(request)
    refused = _refusal(await store.state_async(test_id))
    if refused is not None:
        return refused
    point = await store.add_datapoint(test_id, peer_id, body if body is not None else {})
    request.app.state.loadtest_relay.offer(test_id, [point])
    return _answer(point)


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
    """Create a test (with thresholds); ``started: true`` starts it at once."""
    try:
        parse_all(body.thresholds)
    except ThresholdError as exc:
        raise HTTPException(422, str(exc)) from None
    definition = body.model_dump(exclude={"id", "started"}, exclude_none=True)
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
    store = _store(request)
    raw = await request.body()
    try:
        batch = await asyncio.to_thread(parse_batch, raw)
    except BatchError as exc:
        raise HTTPException(422, f"invalid batch: {exc}") from None
    state = await store.state_async(test_id)
    if state is None:
        raise HTTPException(404, f"no load test {test_id!r} (test-not-found)")
    if state.started is None:
        raise HTTPException(409, "the test is not started (test-not-started)")
    if state.finished is not None:
        raise HTTPException(409, "the test is finished already (test-already-finished)")
    accepted, duplicate = await asyncio.to_thread(store.add_batch, test_id, batch)
    if accepted:
        request.app.state.loadtest_relay.offer(
            test_id,
            [{"peerId": p, "timestamp": t, "metrics": m} for p, t, _, m in batch.points],
            default_timestamp=now_ms(),
        )
    return BatchAck(accepted=accepted, duplicate=duplicate)


@v1.get("/{test_id}/datapoints")
def read_datapoints(
    test_id: str,
    request: Request,
    after: int = Query(
        0, ge=0, le=2**62, description="Only datapoints with a larger id (live pages)."
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
    """Add the load-test routes and state to the results server's app."""
    settings = settings or LoadTestSettings.from_env()
    if settings.compat_auth not in COMPAT_AUTH_MODES:
        raise ValueError(f"load-test compat auth must be one of {', '.join(COMPAT_AUTH_MODES)}")
    app.state.loadtests = Store(engine, settings)
    app.state.loadtest_relay = relays.Relays(settings.influx_url, settings.influx_db)
    before = len(app.router.routes)
    app.include_router(compat)
    # Routes are matched in order, and a farm has a hundred: the original harness's
    # routes take thousands of PUTs a second, so they go first (their paths are theirs
    # alone: /test/..., /status).
    hot = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[:0] = hot
    app.include_router(metrics_router)
    app.include_router(v1, prefix=API_PREFIX)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """The relays' background sender lives as long as the server."""
    relay: relays.Relays = app.state.loadtest_relay
    await relay.start()
    try:
        yield
    finally:
        await app.state.loadtests.writer.stop()
        await relay.stop()
