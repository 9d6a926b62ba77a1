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
        self._queue: deque[str] = deque()
        self._max_queued = max_queued
        self._task: asyncio.Task | None = None
        self._latest: dict[str, dict[str, dict[str, float]]] = {}
        self._lock = threading.Lock()
        self.counters = {"relay_sent_lines": 0, "relay_dropped_lines": 0, "relay_errors": 0}

    def offer(self, test_id: str, points: list[dict], default_timestamp: int = 0) -> None:
        """Called by ingest for every stored datapoint; never blocks, never raises."""
        try:
            with self._lock:
                latest = self._latest.setdefault(test_id, {})
                for p in points:
                    metrics = p["metrics"]
                    if not isinstance(metrics, dict):
                        continue
                    peer = p.get("peerId") or p.get("peer_id") or ""
                    latest[peer] = {
                        k: float(metrics[k])
                        for k in PROMETHEUS_SUMS
                        if isinstance(metrics.get(k), int | float)
                    }
                    if self.influx_url is None:
                        continue
                    stamp = p.get("timestamp")
                    text = line(test_id, peer, int(stamp or default_timestamp), metrics)
                    if text is None:
                        continue
                    if len(self._queue) >= self._max_queued:
                        self._queue.popleft()
                        self.counters["relay_dropped_lines"] += 1
                    self._queue.append(text)
        except Exception:  # a relay must never fail an ingest
            log.exception("load-test relay: could not queue datapoints")

    def prometheus_gauges(self) -> list[str]:
        out = []
        with self._lock:
            snapshot = {t: dict(peers) for t, peers in self._latest.items()}
        for name in PROMETHEUS_SUMS:
            metric = f"perffarm_loadtest_{name}"
            out.append(f"# TYPE {metric} gauge")
            for test_id, peers in sorted(snapshot.items()):
                total = sum(v.get(name, 0.0) for v in peers.values())
                label = test_id.replace("\\", "\\\\").replace('"', '\\"')
                out.append(f'{metric}{{test="{label}"}} {total!r}')
        out.append("# TYPE perffarm_loadtest_peers gauge")
        for test_id, peers in sorted(snapshot.items()):
            out.append(f'perffarm_loadtest_peers{{test="{test_id}"}} {len(peers)}')
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

    async def _flush(self, client: Any) -> None:
        lines = []
        while self._queue and len(lines) < self.batch_lines:
            lines.append(self._queue.popleft())
        if not lines:
            return
        body = await asyncio.to_thread(gzip.compress, "\n".join(lines).encode(), 5)
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
            self.counters["relay_sent_lines"] += len(lines)
        except Exception as exc:
            self.counters["relay_errors"] += 1
            self.counters["relay_dropped_lines"] += len(lines)
            log.warning("InfluxDB relay %s: dropped %d lines: %s", url, len(lines), exc)
