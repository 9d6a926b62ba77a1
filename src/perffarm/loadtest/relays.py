"""Relays of live datapoints (a relay plug-in, InfluxDB's by default), and Prometheus figures.

Ingest must never wait for a relay: ``offer`` only appends datapoints to a bounded queue
(from any thread); a background task hands them to the relay in batches, which it encodes
off the event loop and delivers. When the receiver is slow or down the oldest queued
datapoints are dropped and counted: they are already in perffarm's database, so nothing is
lost there.

A relay is a plug-in of the ``perffarm.relays`` group (``Relay`` below is its contract,
declared in ``perffarm.plugins``); the built-in ``influxdb`` writes InfluxDB's line
protocol and is registered in ``pyproject.toml`` exactly as a third party's relay would be.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

from perffarm import plugins

log = logging.getLogger("perffarm.loadtests.relay")

_loads: Callable[[bytes], Any]
try:
    from orjson import loads as _orjson_loads

    _loads = _orjson_loads
except ImportError:  # the loadtest extra brings orjson
    from json import loads as _json_loads

    _loads = _json_loads


def _finite(text: str) -> float | None:
    value = float(text)
    return value if value - value == 0 else None


def _int64(text: str) -> int | float | None:
    if len(text) > 21:  # beyond 64 bits, and int() refuses numbers of 4,300 digits
        return _finite(text)
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


class RelayPoint(NamedTuple):
    """One datapoint as a relay receives it."""

    test_id: str
    peer_id: str
    timestamp_ms: int
    metrics: dict[str, Any]


class Relay(Protocol):
    """The contract of the ``perffarm.relays`` group (declared in ``perffarm.plugins``).

    ``Relay(url, options)``: where to send (the server's ``PERFFARM_LOADTEST_INFLUX``) and
    the relay's own settings (the InfluxDB relay reads ``database``). The server calls
    ``encode`` in a worker thread with a batch of datapoints (up to 5,000) and answers
    the body to send and how many records it holds (0: nothing to send); it then awaits
    ``deliver(body)`` on the event loop, which raises when the receiver refuses or cannot
    be reached (the records are counted as dropped: a relay never retries, the datapoints
    are in perffarm's database anyway). ``close`` is awaited once, when the server stops.
    """

    def __init__(self, url: str, options: Mapping[str, str], /) -> None: ...

    def encode(self, points: Iterable[RelayPoint]) -> tuple[bytes, int]: ...

    async def deliver(self, body: bytes) -> None: ...

    async def close(self) -> None: ...


class InfluxRelay:
    """The ``influxdb`` relay: InfluxDB 1.x line protocol, gzip, ``POST /write``."""

    def __init__(self, url: str, options: Mapping[str, str], /) -> None:
        self.url = url.rstrip("/")
        self.database = options.get("database") or "comms"
        self.timeout = float(options.get("timeout") or 5)
        self._client: Any = None

    def encode(self, points: Iterable[RelayPoint]) -> tuple[bytes, int]:
        lines = []
        for point in points:
            text = line(point.test_id, point.peer_id, point.timestamp_ms, point.metrics)
            if text is not None:
                lines.append(text)
        return gzip.compress("\n".join(lines).encode(), 5), len(lines)

    async def deliver(self, body: bytes) -> None:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=self.timeout)
        answer = await self._client.post(
            f"{self.url}/write",
            params={"db": self.database, "precision": "ms"},
            content=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        )
        if answer.status_code >= 300:
            raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class Relays:
    """Ingest hands over datapoints; records and figures are made later, off its path.

    ``offer`` takes parsed datapoints (single PUTs), ``offer_chunk`` a stored chunk's JSON
    array as it is (batches: parsing 50 metrics of thousands of datapoints would cost as
    much as storing them). Prometheus figures read, at scrape time, each source's latest
    chunk; the relay encodes its batches in a thread.

    ``url`` None: no relay (nothing is queued). Otherwise the relay plug-in ``relay`` is
    loaded through the registry and made with ``url`` and ``{"database": database}``; a
    relay that cannot be loaded is a ``PluginError`` now, at the server's start.
    """

    def __init__(
        self,
        url: str | None,
        database: str = "comms",
        *,
        relay: str = "influxdb",
        max_queued: int = 200_000,
        batch_lines: int = 5000,
        flush_seconds: float = 0.5,
    ) -> None:
        self.relay: Relay | None = None
        self.relay_name = relay
        if url:
            self.relay = plugins.load(plugins.RELAYS, relay)(url, {"database": database})
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
        if self.relay is None or not count:
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

    def live_sums(self) -> dict[str, tuple[dict[str, float], int]]:
        """Per test: the sum over its peers' latest metrics of each of ``PROMETHEUS_SUMS``,
        and how many peers sent metrics (read at scrape time)."""
        self._fold_chunks()
        with self._lock:
            snapshot = {t: list(peers.values()) for t, peers in self._latest.items()}
        figures = {}
        for test_id, peers in snapshot.items():
            sums = dict.fromkeys(PROMETHEUS_SUMS, 0.0)
            for metrics in peers:
                for name in PROMETHEUS_SUMS:
                    value = metrics.get(name)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        sums[name] += float(value)
            figures[test_id] = (sums, len(peers))
        return figures

    async def start(self) -> None:
        if self.relay is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="perffarm-loadtest-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.relay is None:
            return
        # What is left goes out once, briefly: stopping must not hang on a dead receiver.
        if self._queue:
            await self._flush(timeout=2)
        try:
            await asyncio.wait_for(self.relay.close(), 2)
        except Exception as exc:
            log.warning(
                "load-test relay %s: closing failed: %s", self.relay_name, plugins.describe(exc)
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            while self._queue:
                await self._flush()

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
    def _points(taken: list[tuple[str, list[dict] | bytes, int, int]]) -> Iterator[RelayPoint]:
        """The datapoints of the taken items (chunks read now, in the encoding thread)."""
        for test_id, points, _, stamp in taken:
            if isinstance(points, bytes):
                points = read_points(points)
            for p in points:
                metrics = p.get("metrics")
                if not isinstance(metrics, dict):
                    continue
                peer = p.get("peerId") or p.get("peer_id") or ""
                yield RelayPoint(test_id, peer, int(p.get("timestamp") or stamp), metrics)

    async def _flush(self, timeout: float | None = None) -> None:
        relay = self.relay
        taken = self._take()
        if relay is None or not taken:
            return
        count = sum(item[2] for item in taken)
        try:
            body, count = await asyncio.to_thread(relay.encode, self._points(taken))
            if not count:
                return
            await asyncio.wait_for(relay.deliver(body), timeout)
            self.counters["relay_sent_lines"] += count
        except Exception as exc:
            self.counters["relay_errors"] += 1
            self.counters["relay_dropped_lines"] += count
            log.warning(
                "load-test relay %s: dropped %d records: %s",
                self.relay_name,
                count,
                plugins.describe(exc),
            )
