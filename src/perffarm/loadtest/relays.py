"""Relays of live datapoints: InfluxDB line protocol, and figures for Prometheus.

Ingest must never wait for a relay: ``offer`` only formats lines and appends them to a
bounded queue (from any thread); a background task sends them in gzip-compressed batches.
When InfluxDB is slow or down the oldest queued lines are dropped and counted: the
datapoints themselves are already in perffarm's database, so nothing is lost there.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import threading
from collections import deque
from typing import Any

log = logging.getLogger("perffarm.loadtests.relay")

try:
    from orjson import loads as _loads
except ImportError:  # the loadtest extra brings orjson
    from json import loads as _loads


def _finite(text: str) -> float | None:
    value = float(text)
    return value if value - value == 0 else None


def _int64(text: str) -> int | float | None:
    value = int(text)
    return value if -(2**63) <= value < 2**64 else _finite(text)


def read_points(data: bytes) -> list[dict[str, Any]]:
    """A stored chunk's datapoints: ``[{"peerId","timestamp","metrics"}, ...]``.

    Ingest checks the JSON's syntax, not each number's range: the rare number no double or
    64-bit integer holds (``1e999``) is read here as null, where orjson would refuse the
    whole chunk. The whole test (``?dataPoints=true``) keeps it as sent.
    """
    try:
        return _loads(data)
    except ValueError:
        import json

        return json.loads(data, parse_float=_finite, parse_int=_int64, parse_constant=_none)


def _none(_text: str) -> None:
    return None


#: Figures shown per test on /metrics: the sum over peers of each peer's latest value.
PROMETHEUS_SUMS = (
    "sentPerSecond",
    "receivedPerSecond",
    "relevantPerSecond",
    "duplicate",
    "expired",
    "connectedPeers",
)


def _escape_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _escape_measurement(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def line(test_id: str, peer_id: str, timestamp_ms: int, metrics: dict[str, Any]) -> str | None:
    """One InfluxDB line: measurement ``test-ID`` (as the original harness wrote), tag peer.

    Every numeric metric becomes a float field; ``position`` becomes ``x``, ``y`` (its
    first and third coordinate, the ground plane) and ``z``.
    """
    fields = []
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if value != value or value in (float("inf"), float("-inf")):
            continue
        fields.append(f"{_escape_key(name)}={float(value)!r}")
    position = metrics.get("position")
    if isinstance(position, list) and len(position) == 3:
        for axis, value in zip(("x", "z", "y"), position, strict=True):
            if isinstance(value, int | float) and not isinstance(value, bool):
                fields.append(f"{axis}={float(value)!r}")
    if not fields:
        return None
    return (
        f"{_escape_measurement('test-' + test_id)},peer={_escape_key(peer_id) or 'unknown'} "
        f"{','.join(fields)} {timestamp_ms}"
    )


class Relays:
    """Ingest hands over datapoints; lines and figures are made later, off its path.

    ``offer`` takes parsed datapoints (single PUTs), ``offer_chunk`` a stored chunk's JSON
    array as it is (batches: parsing 50 metrics of thousands of datapoints would cost as
    much as storing them). Prometheus figures read, at scrape time, each source's latest
    chunk; InfluxDB lines are formatted by the background sender, in a thread.
    """

    def __init__(
        self,
        influx_url: str | None,
        influx_db: str = "comms",
        *,
        max_queued: int = 200_000,
        batch_lines: int = 5000,
        flush_seconds: float = 0.5,
    ) -> None:
        self.influx_url = influx_url.rstrip("/") if influx_url else None
        self.influx_db = influx_db
        self.batch_lines = batch_lines
        self.flush_seconds = flush_seconds
        # (test id, parsed datapoints or a chunk's JSON array, datapoints, default stamp)
        self._queue: deque[tuple[str, list[dict] | bytes, int, int]] = deque()
        self._queued = 0
        self._max_queued = max_queued
        self._task: asyncio.Task | None = None
        # test id -> peer -> the peer's latest metrics (a reference: read at scrape time)
        self._latest: dict[str, dict[str, Any]] = {}
        # test id -> source (worker and incarnation) -> its latest chunk, not yet read
        self._chunks: dict[str, dict[str, bytes]] = {}
        self._lock = threading.Lock()
        self.counters = {"relay_sent_lines": 0, "relay_dropped_lines": 0, "relay_errors": 0}

    def offer(self, test_id: str, points: list[dict], default_timestamp: int = 0) -> None:
        """Called by ingest for stored datapoints; never blocks, never raises."""
        try:
            with self._lock:
                latest = self._latest.setdefault(test_id, {})
                for p in points:
                    if isinstance(p.get("metrics"), dict):
                        latest[p.get("peerId") or p.get("peer_id") or ""] = p["metrics"]
                self._enqueue(test_id, points, len(points), default_timestamp)
        except Exception:  # a relay must never fail an ingest
            log.exception("load-test relay: could not queue datapoints")

    def offer_chunk(self, test_id: str, source: str, data: bytes, count: int) -> None:
        """A stored chunk (``[{"peerId","timestamp","metrics"}, ...]``) from ``source``."""
        try:
            with self._lock:
                self._chunks.setdefault(test_id, {})[source] = data
                self._enqueue(test_id, data, count, 0)
        except Exception:  # a relay must never fail an ingest
            log.exception("load-test relay: could not queue datapoints")

    def _enqueue(self, test_id: str, points: list[dict] | bytes, count: int, stamp: int) -> None:
        if self.influx_url is None or not count:
            return
        self._queue.append((test_id, points, count, stamp))
        self._queued += count
        while self._queued > self._max_queued and len(self._queue) > 1:
            _, _, dropped, _ = self._queue.popleft()
            self._queued -= dropped
            self.counters["relay_dropped_lines"] += dropped

    def _fold_chunks(self) -> None:
        with self._lock:
            pending, self._chunks = self._chunks, {}
        for test_id, sources in pending.items():
            updates: dict[str, Any] = {}
            for data in sources.values():
                for p in read_points(data):
                    if isinstance(p.get("metrics"), dict):
                        updates[p.get("peerId") or ""] = p["metrics"]
            with self._lock:
                self._latest.setdefault(test_id, {}).update(updates)

    def prometheus_gauges(self) -> list[str]:
        self._fold_chunks()
        out = []
        with self._lock:
            snapshot = {t: list(peers.values()) for t, peers in self._latest.items()}
        for name in PROMETHEUS_SUMS:
            metric = f"perffarm_loadtest_{name}"
            out.append(f"# TYPE {metric} gauge")
            for test_id, peers in sorted(snapshot.items()):
                total = 0.0
                for metrics in peers:
                    value = metrics.get(name)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        total += float(value)
                label = test_id.replace("\\", "\\\\").replace('"', '\\"')
                out.append(f'{metric}{{test="{label}"}} {total!r}')
        out.append("# TYPE perffarm_loadtest_peers gauge")
        for test_id, peers in sorted(snapshot.items()):
            label = test_id.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'perffarm_loadtest_peers{{test="{label}"}} {len(peers)}')
        return out

    async def start(self) -> None:
        if self.influx_url is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="perffarm-influx-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        # What is left goes out once, briefly: stopping must not hang on a dead InfluxDB.
        if self.influx_url is not None and self._queue:
            import httpx

            async with httpx.AsyncClient(timeout=2) as client:
                await self._flush(client)

    async def _run(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                await asyncio.sleep(self.flush_seconds)
                while self._queue:
                    await self._flush(client)

    def _take(self) -> list[tuple[str, list[dict] | bytes, int, int]]:
        taken = []
        lines = 0
        with self._lock:
            while self._queue and lines < self.batch_lines:
                item = self._queue.popleft()
                self._queued -= item[2]
                lines += item[2]
                taken.append(item)
        return taken

    @staticmethod
    def _format(taken: list[tuple[str, list[dict] | bytes, int, int]]) -> tuple[bytes, int]:
        lines = []
        for test_id, points, _, stamp in taken:
            if isinstance(points, bytes):
                points = read_points(points)
            for p in points:
                metrics = p.get("metrics")
                if not isinstance(metrics, dict):
                    continue
                peer = p.get("peerId") or p.get("peer_id") or ""
                text = line(test_id, peer, int(p.get("timestamp") or stamp), metrics)
                if text is not None:
                    lines.append(text)
        return gzip.compress("\n".join(lines).encode(), 5), len(lines)

    async def _flush(self, client: Any) -> None:
        taken = self._take()
        if not taken:
            return
        body, count = await asyncio.to_thread(self._format, taken)
        if not count:
            return
        url = f"{self.influx_url}/write"
        try:
            answer = await client.post(
                url,
                params={"db": self.influx_db, "precision": "ms"},
                content=body,
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
            )
            if answer.status_code >= 300:
                raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
            self.counters["relay_sent_lines"] += count
        except Exception as exc:
            self.counters["relay_errors"] += 1
            self.counters["relay_dropped_lines"] += count
            log.warning("InfluxDB relay %s: dropped %d lines: %s", url, count, exc)
