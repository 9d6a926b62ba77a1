"""``/metrics``: this process's load-test ingest and relay figures for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(tags=["load tests"])


@router.get("/metrics")
def prometheus(request: Request) -> Response:
    """Prometheus text format: this process's load-test ingest and relay counters."""
    tests = request.app.state.loadtests
    relay = request.app.state.loadtest_relay
    lines = []
    for name, value in [*tests.counters.items(), *relay.counters.items()]:
        metric = f"perffarm_loadtest_{name}_total"
        lines += [f"# TYPE {metric} counter", f"{metric} {value}"]
    lines += relay.prometheus_gauges()
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
