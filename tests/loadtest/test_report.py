"""A load test's summary as printed in a terminal (perffarm.loadtest.report)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from perffarm.loadtest.report import print_summary


def _figures(total: float) -> dict[str, float]:
    return {"sum": total, "p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0}


def _summary(**extra: Any) -> dict[str, Any]:
    return {
        "metrics": {"received": _figures(10), "receivedTotal": _figures(99)},
        "latency_ms": {"count": 5, "p50": 1.5, "p95": 2.5, "p99": 3.5, "max": 9},
        "workers": [
            {
                "name": "w-0",
                "status": "finished",
                "datapoints": 12,
                "peers": 3,
                "lag_ms": {"p99": 4.2},
                "cpu_percent_avg": 37.5,
            }
        ],
        "missing_workers": [],
        "thresholds": [
            {"metric": "received", "expression": "count > 0", "observed": 10, "passed": True}
        ],
        "verdict": "passed",
        "datapoints": 12,
        "peers": 3,
        **extra,
    }


def _printed(summary: dict[str, Any]) -> str:
    console = Console(record=True, width=120, color_system=None)
    print_summary(summary, console)
    return console.export_text()


def test_the_summary_shows_metrics_latency_workers_thresholds_and_verdict() -> None:
    text = _printed(_summary())
    assert "received" in text and "receivedTotal" not in text  # totals are not shown
    assert "latency ms: p50 1.5  p95 2.5  p99 3.5  max 9  (5 messages)" in text
    worker = "worker w-0: finished, 12 datapoints, 3 peers, tick lag p99 4.2 ms, CPU avg 37.5%"
    assert worker in text
    assert "pass received: count > 0 (observed 10)" in text
    assert "verdict: passed (12 datapoints, 3 peers)" in text
    assert "missing workers" not in text and "aborted" not in text


def test_missing_workers_failures_and_an_abort_are_named() -> None:
    failed = {"metric": "duplicate", "expression": "count == 0", "observed": 2, "passed": False}
    text = _printed(
        _summary(
            missing_workers=["w-1"],
            thresholds=[failed],
            aborted={"threshold": "duplicate: count == 0", "observed": 2},
            verdict="failed",
        )
    )
    assert "missing workers: w-1" in text
    assert "FAIL duplicate: count == 0 (observed 2)" in text
    assert "aborted during the run: duplicate: count == 0 (observed 2)" in text
    assert "verdict: failed" in text
