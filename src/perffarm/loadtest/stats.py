"""A peer's statistics, in the metric names of the original harness.

For each category (``sent``, ``received``, ``relayed``, ``all``, ``relevant``, ``duplicate``,
``expired``) a datapoint carries: ``X`` (messages in the period), ``XTotal``,
``XPerSecond``, ``XBytes``, ``XTotalBytes``, ``XBytesPerSecond`` and
``XAveragePacketSize``; plus ``connectedPeers``, ``knownPeersCount``, ``position``
(``[x, y, z]``) and ``averageLatency`` (ms, over the period). Tools written for the original
results server (its InfluxDB relay, its dashboards) read these names unchanged.
"""

from __future__ import annotations

from typing import Any

CATEGORIES = ("sent", "received", "relayed", "all", "relevant", "duplicate", "expired")


class Counter:
    __slots__ = ("bytes", "count", "total", "total_bytes")

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self.total = 0
        self.total_bytes = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.bytes += size

    def roll(self, name: str, seconds: float, into: dict[str, Any]) -> None:
        """Write this period's figures under ``name`` and start a new period."""
        self.total += self.count
        self.total_bytes += self.bytes
        per = 1 / seconds if seconds > 0 else 0.0
        into[name] = self.count
        into[f"{name}Total"] = self.total
        into[f"{name}PerSecond"] = round(self.count * per, 3)
        into[f"{name}Bytes"] = self.bytes
        into[f"{name}TotalBytes"] = self.total_bytes
        into[f"{name}BytesPerSecond"] = round(self.bytes * per, 3)
        into[f"{name}AveragePacketSize"] = round(self.bytes / self.count, 3) if self.count else 0
        self.count = 0
        self.bytes = 0


class PeerStats:
    """Counters a peer updates on every message; ``snapshot`` closes a period."""

    __slots__ = (
        "all_counter",
        "counters",
        "duplicate_counter",
        "expired_counter",
        "latency_count",
        "latency_sum",
        "received_counter",
        "relevant_counter",
    )

    def __init__(self) -> None:
        self.counters = {name: Counter() for name in CATEGORIES}
        # The counters a received message touches, by attribute: a worker's peers update
        # them (``Peer.on_messages``, which also sums ``latency_*``) a hundred thousand
        # times a second.
        self.received_counter = self.counters["received"]
        self.all_counter = self.counters["all"]
        self.relevant_counter = self.counters["relevant"]
        self.duplicate_counter = self.counters["duplicate"]
        self.expired_counter = self.counters["expired"]
        self.latency_sum = 0.0
        self.latency_count = 0

    def sent(self, size: int) -> None:
        self.counters["sent"].add(size)
        self.counters["all"].add(size)

    def relayed(self, size: int) -> None:
        self.counters["relayed"].add(size)
        self.counters["all"].add(size)

    def snapshot(
        self,
        seconds: float,
        *,
        connected_peers: int,
        known_peers: int,
        position: tuple[float, float, float],
    ) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        for name, counter in self.counters.items():
            counter.roll(name, seconds, metrics)
        metrics["connectedPeers"] = connected_peers
        metrics["knownPeersCount"] = known_peers
        metrics["position"] = [round(c, 3) for c in position]
        if self.latency_count:
            metrics["averageLatency"] = round(self.latency_sum / self.latency_count, 3)
        self.latency_sum = 0.0
        self.latency_count = 0
        return metrics
