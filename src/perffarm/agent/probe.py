"""Network round-trip probe: request/response transactions per second to the server.

Like netperf's TCP_RR: one connection, kept alive, and as many tiny request/response
transactions as fit in the time given, one after the other. The rate is the inverse of the
round-trip time including the server's minimal handling, which is what an agent-to-server
load test or a chatty benchmark actually pays.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import httpx

from perffarm.model.api import API_PREFIX, ProbeFigures

PING_PATH = f"{API_PREFIX}/ping"


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def probe(
    client: httpx.Client,
    *,
    duration: float = 1.0,
    max_transactions: int = 100_000,
) -> ProbeFigures:
    """Measure round trips to ``client``'s server; ``client`` must have its base_url set.

    The first transaction opens the connection and is not counted: connection setup is
    not part of a request/response round trip.
    """
    client.get(PING_PATH).raise_for_status()
    latencies: list[float] = []
    clock = time.perf_counter
    started = clock()
    deadline = started + duration
    now = started
    while now < deadline and len(latencies) < max_transactions:
        before = now
        response = client.get(PING_PATH)
        response.read()
        if response.status_code != 200:
            response.raise_for_status()
        now = clock()
        latencies.append(now - before)
    elapsed = now - started
    latencies.sort()
    ms = 1000.0
    return ProbeFigures(
        transactions=len(latencies),
        seconds=round(elapsed, 6),
        transactions_per_second=round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        latency_p50_ms=round(percentile(latencies, 0.50) * ms, 4),
        latency_p90_ms=round(percentile(latencies, 0.90) * ms, 4),
        latency_p99_ms=round(percentile(latencies, 0.99) * ms, 4),
        latency_max_ms=round((latencies[-1] if latencies else 0.0) * ms, 4),
        measured_at=datetime.now(UTC),
    )
