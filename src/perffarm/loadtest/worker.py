"""A worker: waits for the test to start, runs its peers, sends their datapoints in batches.

One asyncio task ticks every peer about 60 times a second (one task for all of them: a
thousand tasks waking 60 times a second would cost more than the peers' own work). How late
each tick is (the event-loop lag) is the worker's own health figure, sent with every batch.

Batches are numbered; a batch is resent until the server acknowledges it, and the server
keeps one copy of (worker, incarnation, sequence), so a lost answer never doubles data.
Sending, resending (backoff with jitter, ``Retry-After`` honoured) and the API-version
check are ``perffarm.client.AsyncClient``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from perffarm.client import calls, errors
from perffarm.client.aio import AsyncClient
from perffarm.loadtest import routines, transports
from perffarm.loadtest.peer import Peer
from perffarm.loadtest.sketch import DDSketch
from perffarm.model.loadtest import DatapointBatch, WorkerHealth

TICK_HZ = 60.0
#: The ticks over which a round of the peers' stats snapshots is spread.
SNAPSHOT_TICKS = 6
TOKEN_HEADER = "X-Perffarm-Loadtest-Token"
#: A batch is sent up to this many times (waits of 0.5 s doubling up to 5 s, plus jitter)
#: before the worker gives it up and goes on with the next.
SEND_TRIES = 12
#: Tries of each request while waiting for the test to start.
WAIT_TRIES = 4


class WorkerError(Exception):
    """Something the user can fix (a wrong URL, a test that does not exist)."""


@dataclass
class WorkerConfig:
    server: str
    test_id: str
    peers: int = 10
    duration: float = 180.0
    target: str = "ws://127.0.0.1:9000/"
    transport: str = "websocket"
    routine: str = "default"
    routine_options: dict[str, Any] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    token: str | None = None
    stats_interval: float = 2.0
    room_size: int = 10
    layer: str = "blue"
    wait_timeout: float = 3600.0
    ack_log: Path | None = None


@dataclass(frozen=True)
class _Outgoing:
    """A batch ready to send: its sequence number, its datapoints' count, its JSON body."""

    sequence: int
    datapoints: int
    body: bytes


class Worker:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.incarnation = uuid.uuid4().hex
        self.sequence = 0
        #: This period's message latencies (ms), appended to by every peer.
        self.latency: list[float] = []
        self.lag = DDSketch()
        self.peers: list[Peer] = []
        self._outbox: asyncio.Queue[_Outgoing | None] = asyncio.Queue()
        self.acknowledged = 0
        #: Set when the server answers that the test is finished (e.g. a threshold with
        #: abortOnFail failed): the peers stop before the duration is over.
        self.finished_by_server = False
        headers = {TOKEN_HEADER: config.token} if config.token else {}
        try:
            self.client = AsyncClient(
                config.server,
                headers=headers,
                timeout=10,
                retries=SEND_TRIES - 1,
                backoff=0.5,
                max_backoff=5,
            )
        except errors.ClientError as exc:
            raise WorkerError(f"{exc} (--server / RESULTS_SERVER_URL)") from None
        import psutil

        self._process = psutil.Process()
        self._process.cpu_percent()

    async def wait_until_started(self) -> None:
        deadline = time.monotonic() + self.config.wait_timeout
        test_id = self.config.test_id
        while True:
            try:
                state = await self.client.call(
                    calls.loadtest_state(test_id), retries=WAIT_TRIES - 1
                )
            except errors.NotFound:
                raise WorkerError(
                    f"the results server has no test {test_id!r} "
                    "(create it first, or check --test-id / TEST_ID)"
                ) from None
            except errors.ServerUnreachable as exc:
                raise WorkerError(f"{exc} (--server / RESULTS_SERVER_URL)") from None
            except errors.ClientError as exc:
                raise WorkerError(str(exc)) from None
            if state.finished:
                raise WorkerError(f"test {test_id!r} is finished already")
            if state.started:
                return
            if time.monotonic() > deadline:
                raise WorkerError(f"test {test_id!r} was not started in time")
            await asyncio.sleep(0.5)

    async def connect_peers(self) -> None:
        config = self.config
        make = routines.load(config.routine)
        transport = transports.load(config.transport)(config.target)
        limit = asyncio.Semaphore(50)

        async def one(index: int) -> Peer:
            peer = Peer(
                f"{config.name}-{index}",
                config.layer,
                f"{config.name}-room-{index // max(1, config.room_size)}",
                make(config.routine_options),
                self.latency,
            )
            async with limit:
                peer.connection = await transport.connect(peer)
            peer.connected = True
            return peer

        try:
            self.peers = list(await asyncio.gather(*(one(i) for i in range(config.peers))))
        except OSError as exc:
            raise WorkerError(
                f"cannot connect peers to {config.target}: {exc} (check --target / LIGHTHOUSE_URL)"
            ) from None

    async def run(self) -> int:
        """Wait, run, report; answers the number of datapoints the server acknowledged."""
        try:
            await self.wait_until_started()
            await self.connect_peers()
            sender = asyncio.create_task(self._send_batches())
            await self._tick_loop()
            self._outbox.put_nowait(None)
            await sender
        finally:
            for peer in self.peers:
                if peer.connection is not None:
                    await peer.connection.close()
            await self.client.aclose()
        return self.acknowledged

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1 / TICK_HZ
        start = loop.time()
        last = start
        next_tick = start
        next_stats = start + self.config.stats_interval
        end = start + self.config.duration
        #: When each peer's current stats period began (its last snapshot).
        since = [start] * len(self.peers)
        #: A round of snapshots under way: its datapoints so far, and the next peer's index.
        round_points: list[dict[str, Any]] | None = None
        next_peer = 0
        share = -(-len(self.peers) // SNAPSHOT_TICKS) if self.peers else 1

        def datapoint(index: int, now: float) -> dict[str, Any]:
            peer = self.peers[index]
            seconds, since[index] = now - since[index], now
            stamp = time.time_ns() // 1_000_000
            return {"peerId": peer.peer_id, "timestamp": stamp, "metrics": peer.snapshot(seconds)}

        while True:
            now = loop.time()
            if now >= end or self.finished_by_server:
                break
            self.lag.add((now - next_tick) * 1000)
            elapsed, delta = now - start, now - last
            last = now
            for peer in self.peers:
                peer.step(elapsed, delta, peer)
            if round_points is None and now >= next_stats:
                round_points, next_peer = [], 0
                next_stats += self.config.stats_interval
            if round_points is not None:
                # A snapshot of every peer at once held the loop for ~20 ms at 1,000
                # peers: a round is spread over a few ticks, each peer's period measured
                # from its own previous snapshot.
                stop = min(next_peer + share, len(self.peers))
                round_points += [datapoint(i, now) for i in range(next_peer, stop)]
                next_peer = stop
                if next_peer >= len(self.peers):
                    self._queue_batch(round_points, final=False)
                    round_points = None
            next_tick += period
            if next_tick < loop.time():
                # Too far behind: skip the missed ticks instead of running them back to back.
                next_tick = loop.time()
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
        if round_points:
            self._queue_batch(round_points, final=False)
        now = loop.time()
        self._queue_batch([datapoint(i, now) for i in range(len(self.peers))], final=True)

    def _queue_batch(self, points: list[dict[str, Any]], *, final: bool) -> None:
        health = WorkerHealth(
            peers=len(self.peers),
            lag=self.lag.to_dict(),
            cpu_percent=self._process.cpu_percent(),
            rss_bytes=self._process.memory_info().rss,
        )
        envelope = DatapointBatch(
            worker=self.config.name,
            incarnation=self.incarnation,
            sequence=self.sequence,
            health=health,
            latency=self._latency_sketch().to_dict(),
            final=final,
        )
        # The datapoints are the worker's own, made above: encoded directly (orjson), not
        # checked one by one by the model first (12 ms of the event loop at 1,000 peers).
        body = orjson.dumps(
            {**envelope.model_dump(mode="json", by_alias=True), "datapoints": points}
        )
        batch = _Outgoing(envelope.sequence, len(points), body)
        self.sequence += 1
        # Period sketches: the server merges them, so each value is counted once.
        self.lag = DDSketch()
        self.latency = []
        for peer in self.peers:
            peer.latency = self.latency
        self._outbox.put_nowait(batch)

    def _latency_sketch(self) -> DDSketch:
        sketch = DDSketch()
        sketch.add_many(self.latency)
        return sketch

    async def _send_batches(self) -> None:
        test_id = self.config.test_id
        while True:
            batch = await self._outbox.get()
            if batch is None:
                return
            try:
                ack = await self.client.send_datapoints(test_id, batch.body)
            except errors.Conflict as exc:
                # Retrying cannot help: the test is finished (perhaps aborted by a threshold).
                if "test-already-finished" in exc.detail:
                    self.finished_by_server = True
            except errors.ClientError:
                # Refused (unknown test, wrong token, invalid) or still unreachable after
                # every try: this batch is given up, the next ones are sent.
                pass
            else:
                self._acknowledged(batch, ack.duplicate)

    def _acknowledged(self, batch: _Outgoing, duplicate: bool) -> None:
        self.acknowledged += batch.datapoints
        if self.config.ack_log is not None:
            with self.config.ack_log.open("a") as out:
                out.write(
                    json.dumps(
                        {
                            "worker": self.config.name,
                            "sequence": batch.sequence,
                            "datapoints": batch.datapoints,
                            "duplicate": duplicate,
                        }
                    )
                    + "\n"
                )


def run_worker(config: WorkerConfig) -> int:
    async def main() -> int:
        worker = Worker(config)
        acknowledged = await worker.run()
        if worker.finished_by_server:
            import sys

            print(
                f"worker {config.name}: the test was finished on the server before the end "
                "of the duration (aborted by a threshold, or finished by hand); stopped",
                file=sys.stderr,
            )
        return acknowledged

    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())
