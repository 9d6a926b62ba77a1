"""The sketch, the thresholds, the stats and the summary: pure parts, real numbers."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from perffarm.loadtest import routines
from perffarm.loadtest import thresholds as thr
from perffarm.loadtest.peer import HEADER, Peer
from perffarm.loadtest.routines import CHAT, POSITION
from perffarm.loadtest.sketch import DDSketch
from perffarm.loadtest.stats import CATEGORIES
from perffarm.loadtest.summary import MetricValues, WorkerReport, summarize


def test_sketch_quantiles_stay_within_the_relative_accuracy() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(1, 1.2) for _ in range(20_000)]
    sketch = DDSketch(0.01)
    sketch.extend(values)
    for q in (0.5, 0.9, 0.95, 0.99):
        exact = float(np.quantile(values, q, method="lower"))
        assert abs(sketch.quantile(q) - exact) / exact <= 0.0201


def test_merged_sketches_equal_one_sketch_of_all_values() -> None:
    rng = random.Random(3)
    parts = [[rng.expovariate(0.1) for _ in range(1000)] for _ in range(3)]
    merged = DDSketch()
    for part in parts:
        sketch = DDSketch()
        sketch.extend(part)
        # Through JSON, as workers send them.
        merged.merge(DDSketch.from_dict(sketch.to_dict()))
    whole = DDSketch()
    whole.extend(v for part in parts for v in part)
    assert merged.buckets == whole.buckets
    assert merged.count == whole.count == 3000
    for q in (0.5, 0.99):
        assert merged.quantile(q) == whole.quantile(q)


def test_adding_many_values_at_once_builds_the_same_sketch() -> None:
    """What a worker does with its period's latencies equals adding them one by one."""
    rng = random.Random(11)
    values = [rng.lognormvariate(2, 1.5) for _ in range(5_000)]
    values += [0.0, 1e-7, -3.0, float("nan"), 1e-6, 250.0]
    one_by_one, at_once = DDSketch(), DDSketch()
    for value in values:
        one_by_one.add(value)
    at_once.add_many(values)
    at_once.add_many([])
    assert at_once.buckets == one_by_one.buckets
    for figure in ("count", "zeros", "min", "max"):
        assert getattr(at_once, figure) == getattr(one_by_one, figure)
    assert at_once.sum == pytest.approx(one_by_one.sum, rel=1e-12)  # summed in another order
    assert at_once.count == 5_004 and at_once.zeros == 3 and at_once.min == 0.0


def test_thresholds_parse_and_judge() -> None:
    t = thr.parse("receivedPerSecond", "p(95) > 50")
    assert (t.aggregate, t.operator, t.value) == ("p95", ">", 50.0)
    assert thr.evaluate(t, {"p95": 60.0}).passed
    assert not thr.evaluate(t, {"p95": 40.0}).passed
    # A metric nobody reported fails rather than passes.
    assert not thr.evaluate(thr.parse("duplicate", "count == 0"), None).passed
    with pytest.raises(thr.ThresholdError, match="AGGREGATE OPERATOR NUMBER"):
        thr.parse("x", "p95 > 5")
    assert thr.parse_option("duplicate=count == 0") == ("duplicate", "count == 0")


def test_stats_close_a_period_in_the_original_names() -> None:
    peer = Peer("p", "l", "r", routines.default(), [])
    stats = peer.stats
    for _ in range(4):
        stats.sent(50)
    now = time.time()
    fresh = HEADER.pack(POSITION, 9, 1, now - 0.015) + bytes(100 - HEADER.size)
    peer.on_messages([fresh, fresh])  # the second is a duplicate
    m = stats.snapshot(2.0, connected_peers=1, known_peers=3, position=(1, 2, 3))
    assert m["sent"] == 4 and m["sentPerSecond"] == 2 and m["sentBytes"] == 200
    assert m["sentAveragePacketSize"] == 50 and m["sentBytesPerSecond"] == 100
    assert m["received"] == 2 and m["duplicate"] == 1 and m["relevant"] == 1
    assert m["all"] == 6 and m["averageLatency"] == pytest.approx(15, abs=5)
    assert m["position"] == [1, 2, 3] and m["knownPeersCount"] == 3
    again = stats.snapshot(2.0, connected_peers=1, known_peers=3, position=(1, 2, 3))
    assert again["sent"] == 0 and again["sentTotal"] == 4 and "averageLatency" not in again
    assert all(f"{c}TotalBytes" in again for c in CATEGORIES)


def test_summary_percentiles_thresholds_and_missing_workers() -> None:
    values = MetricValues()
    for i in range(100):
        values.add(f"p{i % 10}", {"receivedPerSecond": float(i), "duplicate": 0, "position": [0]})
    alive, dead = WorkerReport("w-alive"), WorkerReport("w-dead")
    alive.add_batch(incarnation="a", received_at=10_000, datapoints=50, final=True, health=None)
    dead.add_batch(incarnation="b", received_at=1_000, datapoints=50, final=False, health=None)
    summary = summarize(
        values,
        [alive, dead],
        DDSketch(),
        {"receivedPerSecond": ["p(95) > 50", "max < 10"], "duplicate": ["count == 0"]},
        end_ms=20_000,
    )
    assert summary["metrics"]["receivedPerSecond"]["p50"] == pytest.approx(49.5)
    assert summary["metrics"]["receivedPerSecond"]["max"] == 99
    assert "position" not in summary["metrics"]
    assert [t["passed"] for t in summary["thresholds"]] == [True, False, True]
    assert summary["verdict"] == "failed"
    assert summary["missing_workers"] == ["w-dead"]
    assert summary["peers"] == 10


def test_column_by_column_matches_one_value_at_a_time() -> None:
    """Uniform datapoints take the columnar way, mixed ones the general way: same values."""
    uniform = [
        {"peerId": f"p{i % 3}", "metrics": {"a": i, "b": i / 2, "flag": True, "pos": [i]}}
        for i in range(50)
    ]
    mixed = [
        {"peerId": "p0", "metrics": {"a": 1, "b": "text"}},
        {"peerId": "p1", "metrics": {"a": 2.5, "c": None, "d": False}},
        {"peerId": "p2", "metrics": {"b": 3, "a": True}},
        {"peerId": "p3", "metrics": "not an object"},
        {"peerId": "p4", "metrics": {"c": 7}},
        {"peerId": "p5", "metrics": {"a": 4, "x": 1}},  # same size as the first, other names
    ]
    together = MetricValues()
    together.add_points(uniform + mixed)
    one_by_one = MetricValues()
    for chunk in (uniform, mixed):
        one_by_one.add_points(chunk)
    expected_a = [*range(50), 1, 2.5, 4]
    for values in (together, one_by_one):
        assert sorted(values.values) == ["a", "b", "c", "x"]
        assert sorted(values.values["a"]) == sorted(expected_a)
        assert sorted(values.values["b"]) == sorted([i / 2 for i in range(50)] + [3])
        assert list(values.values["c"]) == [7]
        assert values.datapoints == 55 and values.peers == {f"p{i}" for i in range(6)} - {"p3"}
    only = MetricValues()
    only.add_points(uniform + mixed, names=["b", "missing"])
    assert sorted(only.values) == ["b"] and only.datapoints == 55


def test_only_failures_that_cannot_recover_are_settled() -> None:
    def outcome(metric: str, expression: str, observed: float) -> thr.Outcome:
        figures = {"count": observed, "max": observed, "min": observed, "p95": observed}
        return thr.evaluate(thr.parse(metric, expression), figures)

    assert thr.settled(outcome("duplicate", "count == 0", 3))
    assert thr.settled(outcome("latency", "max < 100", 150))
    assert thr.settled(outcome("connectedPeers", "min > 0", 0))
    assert not thr.settled(outcome("received", "count > 100", 3))  # may still grow
    assert not thr.settled(outcome("receivedPerSecond", "p(95) > 50", 3))
    assert not thr.settled(outcome("duplicate", "count == 0", 0))  # passing


def test_k6_threshold_objects() -> None:
    parsed = thr.parse_all(
        {
            "sent": ["count > 1", {"threshold": "p(99) < 5", "abortOnFail": True,
                                   "delayAbortEval": "1m"}],
            "received": "avg > 2",
        }
    )  # fmt: skip
    assert [(t.metric, t.aggregate, t.abort_on_fail, t.delay_abort_eval) for t in parsed] == [
        ("sent", "count", False, 0.0),
        ("sent", "p99", True, 60.0),
        ("received", "avg", False, 0.0),
    ]
    assert thr.parse_duration("x", "250ms") == 0.25 and thr.parse_duration("x", 3) == 3.0
    for bad in ({"threshold": "count > 1", "abortOnFail": "yes"}, {"expression": "count > 1"},
                {"threshold": "count > 1", "delayAbortEval": "soon"}, 3):  # fmt: skip
        with pytest.raises(thr.ThresholdError):
            thr.parse_all({"sent": [bad]})
    outcome = thr.evaluate(parsed[1], {"p99": 9.0})
    assert outcome.to_dict()["abortOnFail"] is True and not outcome.passed


def test_a_peer_counts_what_it_receives() -> None:
    """Fresh, duplicate, expired and malformed messages, one at a time or a read at once."""
    now = time.time()

    def message(kind: int, sender: int, sequence: int, age: float, size: int = 40) -> bytes:
        return HEADER.pack(kind, sender, sequence, now - age) + bytes(size - HEADER.size)

    received = [
        message(POSITION, 1, 1, 0.010),
        message(POSITION, 1, 1, 0.010),  # the same sequence again: a duplicate
        message(POSITION, 2, 5, 3.0),  # a position 3 s old has expired
        message(CHAT, 2, 6, 3.0, size=100),  # a chat message lives longer
        message(POSITION, 1, 0, 0.0),  # older than one already seen: a duplicate
        b"short",
    ]
    one_by_one = Peer("p", "l", "r", routines.default(), [])
    for data in received:
        one_by_one.on_message(data)
    one_by_one.on_message("text is not ours")
    together = Peer("p", "l", "r", routines.default(), [])
    together.on_messages(received)
    for peer in (one_by_one, together):
        figures = peer.snapshot(1.0)
        assert (figures["received"], figures["receivedBytes"]) == (5, 260)
        assert (figures["all"], figures["duplicate"], figures["expired"]) == (5, 2, 1)
        assert (figures["relevant"], figures["relevantBytes"]) == (2, 140)
        assert len(peer.latency) == 3 and peer.latency[0] == pytest.approx(10, abs=5)
        assert figures["averageLatency"] == pytest.approx(sum(peer.latency) / 3)
        assert peer.last_seen == {1: 1, 2: 6}
