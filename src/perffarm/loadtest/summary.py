"""The summary of a load test: figures per metric, per-worker health, the verdict.

Pure: it takes datapoints and worker reports as plain values, so the server computes it
from the database and a test computes it from a list. Percentiles of a metric are over
every datapoint (all peers, all periods); latency percentiles come from the merged sketch.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from perffarm.loadtest import thresholds as thr
from perffarm.loadtest.sketch import DDSketch
from perffarm.model.loadtest import DEFAULT_MISSING_AFTER_MS

STANDARD_PERCENTILES = (50.0, 95.0, 99.0)
_NUMBER_TYPES = frozenset((int, float))


@dataclass
class WorkerReport:
    """What the server knows of one worker, gathered from its batches."""

    name: str
    incarnations: set[str] = field(default_factory=set)
    batches: int = 0
    datapoints: int = 0
    peers: int = 0
    first_seen: int | None = None
    last_seen: int | None = None
    final: bool = False
    lag: DDSketch = field(default_factory=DDSketch)
    cpu: list[float] = field(default_factory=list)
    rss_max: int = 0

    def add_batch(
        self,
        *,
        incarnation: str,
        received_at: int,
        datapoints: int,
        final: bool,
        health: dict[str, Any] | None,
    ) -> None:
        self.incarnations.add(incarnation)
        self.batches += 1
        self.datapoints += datapoints
        self.first_seen = (
            received_at if self.first_seen is None else min(self.first_seen, received_at)
        )
        self.last_seen = received_at if self.last_seen is None else max(self.last_seen, received_at)
        self.final = self.final or final
        if health:
            if health.get("lag"):
                self.lag.merge(DDSketch.from_dict(health["lag"]))
            if health.get("cpu_percent") is not None:
                self.cpu.append(float(health["cpu_percent"]))
            self.rss_max = max(self.rss_max, int(health.get("rss_bytes") or 0))
            self.peers = max(self.peers, int(health.get("peers") or 0))

    def to_dict(self, end_ms: int, missing_after_ms: int) -> dict[str, Any]:
        silent = None if self.last_seen is None else max(0, end_ms - self.last_seen)
        missing = not self.final and (silent is None or silent > missing_after_ms)
        return {
            "name": self.name,
            "status": "missing" if missing else ("finished" if self.final else "reporting"),
            "incarnations": len(self.incarnations),
            "batches": self.batches,
            "datapoints": self.datapoints,
            "peers": self.peers,
            "last_seen": self.last_seen,
            "silent_ms": silent,
            "lag_ms": _sketch_figures(self.lag),
            "cpu_percent_avg": round(sum(self.cpu) / len(self.cpu), 1) if self.cpu else None,
            "cpu_percent_max": round(max(self.cpu), 1) if self.cpu else None,
            "rss_bytes_max": self.rss_max or None,
        }


def _sketch_figures(sketch: DDSketch) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "count": sketch.count,
        "avg": r(sketch.mean),
        "p50": r(sketch.quantile(0.50)),
        "p95": r(sketch.quantile(0.95)),
        "p99": r(sketch.quantile(0.99)),
        "max": r(sketch.max) if sketch.count else None,
    }


class MetricValues:
    """Every numeric value of every metric, kept compactly until the summary is made."""

    def __init__(self) -> None:
        self.values: dict[str, array] = {}
        self.datapoints = 0
        self.peers: set[str] = set()

    def add(self, peer_id: str, metrics: dict[str, Any]) -> None:
        self.add_points([{"peerId": peer_id, "metrics": metrics}])

    def add_points(
        self, points: Iterable[dict[str, Any]], names: Iterable[str] | None = None
    ) -> None:
        """Datapoints as stored (``{"peerId", "metrics", ...}``); those whose metrics are not
        an object are skipped. ``names``: keep only these metrics.

        Column by column rather than datapoint by datapoint: a stored test holds millions of
        datapoints of ~50 metrics each, and a Python step per value made a summary of half a
        million datapoints take 20 s.
        """
        kept = [p for p in points if type(p["metrics"]) is dict]
        if not kept:
            return
        self.datapoints += len(kept)
        self.peers.update([p["peerId"] for p in kept])
        metrics = [p["metrics"] for p in kept]
        wanted = None if names is None else set(names)
        for name, column in _columns(metrics):
            if wanted is not None and name not in wanted:
                continue
            # JSON gives int, float, bool, str, None, list or dict; only numbers count
            # (bool is not one here, though Python says it is an int).
            if not set(map(type, column)) <= _NUMBER_TYPES:
                column = [v for v in column if type(v) is float or type(v) is int]
                if not column:
                    continue
            stored = self.values.get(name)
            if stored is None:
                stored = self.values[name] = array("d")
            stored.frombytes(np.array(column, dtype=np.float64).tobytes())

    def aggregates(
        self, extra_percentiles: Iterable[float] = (), names: Iterable[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """Figures per metric (all metrics, or only ``names``)."""
        wanted = sorted(set(STANDARD_PERCENTILES) | set(extra_percentiles))
        out: dict[str, dict[str, float]] = {}
        chosen = set(names) if names is not None else None
        for name, column in sorted(self.values.items()):
            if chosen is not None and name not in chosen:
                continue
            data = np.frombuffer(column, dtype=np.float64)
            points = np.percentile(data, wanted)
            figures: dict[str, float] = {
                "n": int(data.size),
                "sum": float(data.sum()),
                "avg": float(data.mean()),
                "min": float(data.min()),
                "max": float(data.max()),
            }
            figures["count"] = figures["sum"]
            for p, v in zip(wanted, points, strict=True):
                figures[f"p{p:g}"] = float(v)
            out[name] = {
                k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()
            }
        return out


def _columns(metrics: list[dict[str, Any]]) -> Iterator[tuple[str, Sequence[Any]]]:
    """(name, every datapoint's value) per metric; a datapoint without it gives None.

    Peers of one test almost always send the same metrics: then one C-level pass turns the
    objects into rows and another into columns, instead of a Python step per value.
    """
    first = list(metrics[0])
    if len(first) > 1 and set(map(len, metrics)) == {len(first)}:
        try:
            rows = list(map(itemgetter(*first), metrics))
        except KeyError:
            pass  # same sizes, other names: take the general way
        else:
            # Same size and every name of the first: the same names in every datapoint.
            yield from zip(first, zip(*rows, strict=True), strict=True)
            return
    for name in set(first).union(*metrics[1:]):
        yield name, [m.get(name) for m in metrics]


def latency_figures(latency: DDSketch, extra_percentiles: Iterable[float] = ()) -> dict[str, Any]:
    """The merged latency sketch's figures, as thresholds on ``latency`` read them."""
    figures: dict[str, Any] = dict(_sketch_figures(latency))
    for p in extra_percentiles:
        q = latency.quantile(p / 100)
        figures[f"p{p:g}"] = None if q is None else round(q, 3)
    figures["sum"] = figures["count"]
    return figures


def summarize(
    values: MetricValues,
    workers: Iterable[WorkerReport],
    latency: DDSketch,
    threshold_definition: dict[str, list[str] | str] | None,
    *,
    end_ms: int,
    missing_after_ms: int = DEFAULT_MISSING_AFTER_MS,
) -> dict[str, Any]:
    parsed = thr.parse_all(threshold_definition or {})
    extra = [t.percentile for t in parsed if t.percentile is not None]
    metrics = values.aggregates(extra)
    latency_ms = latency_figures(latency, extra)
    outcomes = [
        thr.evaluate(t, latency_ms if t.metric == "latency" else metrics.get(t.metric))
        for t in parsed
    ]
    worker_list = [w.to_dict(end_ms, missing_after_ms) for w in workers]
    missing = [w["name"] for w in worker_list if w["status"] == "missing"]
    return {
        "datapoints": values.datapoints,
        "peers": len(values.peers),
        "metrics": metrics,
        "latency_ms": latency_ms,
        "workers": worker_list,
        "missing_workers": missing,
        "thresholds": [o.to_dict() for o in outcomes],
        "verdict": "failed" if any(not o.passed for o in outcomes) else "passed",
    }
