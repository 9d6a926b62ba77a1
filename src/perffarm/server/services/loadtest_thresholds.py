"""A running load test's ``abortOnFail`` thresholds, checked on the data so far: each
chunk and batch is read once, however often the thresholds are checked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from perffarm.gcpause import collector_paused
from perffarm.loadtest import thresholds as thr
from perffarm.loadtest.relays import read_points
from perffarm.loadtest.sketch import DDSketch
from perffarm.loadtest.summary import MetricValues, latency_figures
from perffarm.loadtest.thresholds import parse_all
from perffarm.server.services.loadtest_batches import now_ms
from perffarm.server.store import loadtests as store


@dataclass
class _Progress:
    """What has been read of one test so far."""

    metrics: set[str]
    values: MetricValues = field(default_factory=MetricValues)
    latency: DDSketch = field(default_factory=DDSketch)
    chunks: set[int] = field(default_factory=set)
    batches: set[int] = field(default_factory=set)


class ThresholdWatch:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._progress: dict[str, _Progress] = {}

    def forget(self, test_id: str) -> None:
        self._progress.pop(test_id, None)

    def keep_only(self, test_ids: set[str]) -> None:
        """Forget the tests that are not running any more."""
        for gone in set(self._progress) - test_ids:
            del self._progress[gone]

    def check(self, test_id: str, started: int, definition: dict) -> dict | None:
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
        with self.engine.connect() as conn:
            new = sorted(set(store.chunk_ids(conn, test_id)) - progress.chunks)
            for chunk_id, data in store.chunks_by_id(conn, new):
                with collector_paused():
                    progress.values.add_points(read_points(data), progress.metrics)
                progress.chunks.add(chunk_id)
            if "latency" in progress.metrics:
                for batch_id, latency in store.latency_sketches(conn, test_id):
                    if batch_id not in progress.batches:
                        progress.latency.merge(DDSketch.from_dict(json.loads(latency)))
                        progress.batches.add(batch_id)
