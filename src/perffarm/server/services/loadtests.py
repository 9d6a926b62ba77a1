"""Load tests on the results server: their life (created, started, finished), their data,
summaries and verdicts, and ``{id}.json`` for the tools that read the original's files.

The original results server kept tests in memory and wrote ``{id}.json`` on finish. Here a
test lives in the database from its creation (so a restart loses nothing and several server
processes share it) and is still written to ``{results_location}/{id}.json`` on finish, in
the original shape.

**Ingest from every transport**: ``parse_batch(raw) -> ParsedBatch`` (loadtest_batches),
then ``await ingest_batch(app, test_id, batch) -> BatchAck``, which refuses with
``IngestRefused`` (``.status`` 404/409 and ``.code`` as the original harness names it) and
otherwise stores, relays and acknowledges.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import itertools
import json
import logging
import os
import secrets
import string
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from perffarm.gcpause import collector_paused
from perffarm.loadtest import relays
from perffarm.loadtest.relays import read_points
from perffarm.loadtest.sketch import DDSketch
from perffarm.loadtest.summary import MetricValues, WorkerReport, summarize
from perffarm.loadtest.thresholds import ThresholdError
from perffarm.model.loadtest import MAX_BATCH_DATAPOINTS, BatchAck, LoadTestInfo
from perffarm.server.core.errors import Conflict, NotFound, PerffarmError
from perffarm.server.core.principal import Principal
from perffarm.server.core.secrets import hash_secret, new_secret
from perffarm.server.services.loadtest_batches import ParsedBatch, now_ms
from perffarm.server.services.loadtest_thresholds import ThresholdWatch
from perffarm.server.services.loadtest_writer import GroupWriter
from perffarm.server.settings import LoadTestSettings
from perffarm.server.store import loadtests as store
from perffarm.server.store.loadtests import chunk_items, encode_chunk

log = logging.getLogger("perffarm.loadtests")

_ID_CHARS = string.ascii_letters + string.digits
#: ``datapoints?after=`` cursors: chunk id * this + position in the chunk + 1.
_CURSOR_SPAN = 1 << 17
assert MAX_BATCH_DATAPOINTS < _CURSOR_SPAN


class TestState:
    """What a route needs to know to accept a write: started and finished times."""

    __slots__ = ("finished", "started")

    def __init__(self, started: int | None, finished: int | None) -> None:
        self.started = started
        self.finished = finished


class LoadTests:
    """Every load-test read and write of one server process, on one engine."""

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
        self.writer = GroupWriter(engine, self.point_group_rows)
        #: Names this process's chunks of single datapoints: (test, "", incarnation, n).
        self.incarnation = uuid.uuid4().hex
        self._sequence = itertools.count()
        self.thresholds = ThresholdWatch(engine)

    # -- tests -------------------------------------------------------------------------

    def create(
        self,
        test_id: str | None,
        definition: dict[str, Any],
        started: bool,
        *,
        creator: Principal | None = None,
    ) -> dict:
        """A new test (a random id when none is given); FileExistsError when it exists.
        ``creator``: who made it (its user may write to it)."""
        stamp = now_ms()
        test_id = test_id or f"{stamp}-{''.join(secrets.choice(_ID_CHARS) for _ in range(6))}"
        row = {
            "id": test_id,
            "created": stamp,
            "started": stamp if started else None,
            "finished": None,
            "definition": json.dumps(definition),
            "results": "{}",
            "created_by_user_id": creator.user.id if creator and creator.user else None,
            "created_by": creator.describe() if creator else None,
        }
        if not store.create(self.engine, row):
            raise FileExistsError(test_id)
        return row

    def row(self, test_id: str) -> sa.Row | None:
        return store.row(self.engine, test_id)

    def creator(self, test_id: str) -> int | None:
        """The user who made the test, when a user did."""
        return store.creator(self.engine, test_id)

    def token_fits(self, test_id: str | None, given: str | None) -> bool:
        """``given`` is the server's load-test token, or a token minted for ``test_id``."""
        if not given:
            return False
        configured = self.settings.token
        if configured and secrets.compare_digest(configured, given):
            return True
        return test_id is not None and store.token_of_test(self.engine, test_id, hash_secret(given))

    def mint_token(self, test_id: str, *, by: str) -> str:
        """A new token for the workers of one test, returned this once (its hash is kept)."""
        token_id = secrets.token_hex(6)  # 12 characters, as other perffarm tokens' ids
        token = f"pflt_{token_id}_{new_secret()}"
        store.add_token(self.engine, test_id, token_id, hash_secret(token), by)
        return token

    def found(self, test_id: str) -> sa.Row:
        """The test's row; NotFound in the original's words when there is none."""
        row = self.row(test_id)
        if row is None:
            raise NotFound(f"no load test {test_id!r} (test-not-found)")
        return row

    def state(self, test_id: str) -> TestState | None:
        cached = self._states.get(test_id)
        if cached is not None and time.monotonic() - cached[0] < self.STATE_TTL:
            return cached[1]
        found = store.started_and_finished(self.engine, test_id)
        if found is None:
            return None
        state = TestState(*found)
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
        store.start(self.engine, test_id, stamp)
        self._states.pop(test_id, None)
        return stamp

    def finish(self, test_id: str, *, aborted: dict[str, Any] | None = None) -> tuple[int, dict]:
        """Mark finished, compute and keep the summary, write ``{id}.json``.

        ``aborted``: the threshold that stopped the test during the run (kept in the
        summary; the verdict is then ``failed``). When another request or server process
        finished the test meanwhile, its finish stands and its summary is answered.
        """
        stamp = now_ms()
        row = self.found(test_id)
        summary = self.summary(test_id, end_ms=stamp, definition=json.loads(row.definition))
        if aborted is not None:
            summary["aborted"] = aborted
            summary["verdict"] = "failed"
        done = store.finish(self.engine, test_id, stamp, summary)
        self._states.pop(test_id, None)
        self.thresholds.forget(test_id)
        if not done:
            kept = self.found(test_id)
            assert kept.finished is not None
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

    def iter_datapoints(self, test_id: str) -> Iterator[dict[str, Any]]:
        """Every datapoint of a test, ``{"peerId","timestamp","metrics"}``, in storage order."""
        with self.engine.connect() as conn:
            for _, _, data in store.chunks(conn, test_id):
                yield from read_points(data)

    def whole_test_json(self, test_id: str) -> Iterator[str]:
        """The test in the original shape, as JSON text, without parsing stored metrics."""
        row = self.found(test_id)
        yield '{"id":' + json.dumps(row.id) + ',"dataPoints":['
        first = True
        with self.engine.connect() as conn:
            for _, count, data in store.chunks(conn, test_id):
                if not count:
                    continue
                yield ("" if first else ",") + chunk_items(data).decode()
                first = False
            topology = store.topology(conn, test_id)
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
            text = orjson.dumps(metrics)
        except (TypeError, ValueError):
            metrics, text = {}, b"{}"
        peer = orjson.dumps(peer_id)
        encoded = b'{"peerId":%b,"timestamp":%d,"metrics":%b}' % (peer, stamp, text)
        await self.writer.write(test_id, encoded, stamp)
        self.counters["datapoints"] += 1
        return encoded, {"peerId": peer_id, "timestamp": stamp, "metrics": metrics}

    def point_group_rows(
        self, groups: dict[str, builtins.list[tuple[bytes, int]]]
    ) -> builtins.list[dict[str, Any]]:
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
        envelope = batch.envelope
        chunk = None
        if batch.count:
            # Compressed before the transaction, and outside the GIL (lz4 lets go of it).
            codec, blob = encode_chunk(batch.data)
            chunk = {
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
        record = {
            "test_id": test_id,
            "worker": envelope.worker,
            "incarnation": envelope.incarnation,
            "sequence": envelope.sequence,
            "received_at": now_ms(),
            "datapoints": batch.count,
            "final": envelope.final,
            "health": envelope.health.model_dump_json() if envelope.health else None,
            "latency": json.dumps(envelope.latency) if envelope.latency else None,
        }
        if not store.add_batch(self.engine, record, chunk):
            self.counters["duplicate_batches"] += 1
            return 0, True
        self.counters["batches"] += 1
        self.counters["datapoints"] += batch.count
        return batch.count, False

    def add_results(self, test_id: str, peer_id: str, body: dict) -> dict:
        entry = {**body, "timestamp": now_ms()}
        with self._results_lock:
            store.set_peer_results(self.engine, test_id, peer_id, entry)
        return entry

    def add_topology(self, test_id: str, topology: Any) -> None:
        store.add_topology(self.engine, test_id, now_ms(), topology)

    # -- reading ---------------------------------------------------------------------

    def info(self, row: sa.Row) -> LoadTestInfo:
        definition = json.loads(row.definition)
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
            datapoints=store.datapoint_count(self.engine, row.id),
            verdict=row.verdict,
        )

    def list(self, limit: int) -> builtins.list[LoadTestInfo]:
        return [self.info(r) for r in store.listing(self.engine, limit)]

    def summary(self, test_id: str, *, end_ms: int, definition: dict) -> dict:
        values = MetricValues()
        workers: dict[str, WorkerReport] = {}
        latency = DDSketch()
        with self.engine.connect() as conn:
            for _, _, data in store.chunks(conn, test_id):
                with collector_paused():
                    values.add_points(read_points(data))
            batches = store.batches(conn, test_id)
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

    def datapoints_after(self, test_id: str, after: int, limit: int) -> builtins.list[dict]:
        """Datapoints in storage order after the cursor ``after`` (0: from the start); each
        has an ``id``, the cursor to pass next (a chunk id and a position in it)."""
        first_chunk, seen = divmod(after, _CURSOR_SPAN)
        out: builtins.list[dict] = []
        with self.engine.connect() as conn:
            for chunk_id, count, data in store.chunks(conn, test_id, from_id=first_chunk):
                skip = seen if chunk_id == first_chunk else 0
                if skip >= count:
                    continue
                for index, point in enumerate(read_points(data)[skip:], start=skip):
                    out.append({"id": chunk_id * _CURSOR_SPAN + index + 1, **point})
                    if len(out) >= limit:
                        return out
        return out

    # -- thresholds during the run ---------------------------------------------------------

    def check_running(self) -> builtins.list[tuple[str, dict]]:
        """Check every running test's ``abortOnFail`` thresholds; finish (abort) the tests
        where one fails. Answers the aborted tests and why."""
        running = store.running(self.engine)
        self.thresholds.keep_only({r.id for r in running})
        aborted = []
        for test_id, started, definition in running:
            try:
                reason = self.thresholds.check(test_id, started, json.loads(definition))
            except ThresholdError:
                continue  # a test made through the original routes with a bad threshold
            if reason is not None:
                self.finish(test_id, aborted=reason)
                log.warning("load test %s aborted: %s", test_id, reason["threshold"])
                aborted.append((test_id, reason))
        return aborted


# -- ingest, for every transport ---------------------------------------------------------


class IngestRefused(PerffarmError):
    """A batch for a test that cannot take it, ``code`` as the original harness names it
    (``test-not-found``, ``test-not-started``, ``test-already-finished``); ``status`` is the
    HTTP status of its kind."""

    status = 409

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TestMissing(IngestRefused, NotFound):
    status = 404


class TestClosed(IngestRefused, Conflict):
    """Not started yet, or finished already."""


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
    tests: LoadTests = app.state.loadtests
    state = await tests.state_async(test_id)
    if state is None:
        raise TestMissing("test-not-found", f"no load test {test_id!r} (test-not-found)")
    if state.started is None:
        raise TestClosed("test-not-started", "the test is not started (test-not-started)")
    if state.finished is not None:
        raise TestClosed(
            "test-already-finished", "the test is finished already (test-already-finished)"
        )
    accepted, duplicate = await asyncio.to_thread(tests.add_batch, test_id, batch)
    if accepted:
        source = f"{batch.envelope.worker}\x00{batch.envelope.incarnation}"
        app.state.loadtest_relay.offer_chunk(test_id, source, batch.data, batch.count)
    return BatchAck(accepted=accepted, duplicate=duplicate)


# -- the life of the service --------------------------------------------------------------


def install(app: FastAPI, engine: Engine, settings: LoadTestSettings | None = None) -> None:
    """The load-test service and relays on the app's state."""
    settings = settings or LoadTestSettings.from_env()
    app.state.loadtests = LoadTests(engine, settings)
    app.state.loadtest_relay = relays.Relays(
        settings.influx_url, settings.influx_db, relay=settings.relay
    )


async def _check_thresholds(tests: LoadTests) -> None:
    """Every ``check_every`` seconds: running tests' ``abortOnFail`` thresholds."""
    while True:
        await asyncio.sleep(tests.settings.check_every)
        try:
            await asyncio.to_thread(tests.check_running)
        except Exception:  # a check must never stop the server; the next one tries again
            log.exception("load tests: checking thresholds during the run failed")


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """The relays' background sender and the threshold checks live as long as the server."""
    relay: relays.Relays = app.state.loadtest_relay
    tests: LoadTests = app.state.loadtests
    await relay.start()
    checker = asyncio.create_task(_check_thresholds(tests), name="perffarm-loadtest-thresholds")
    try:
        yield
    finally:
        checker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checker
        await tests.writer.stop()
        await relay.stop()
