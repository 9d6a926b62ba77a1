"""``/metrics``: this process's load-test ingest and relay figures for Prometheus, written
by prometheus_client from the counters ingest keeps (plain integers on the hot path, read
at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from perffarm.loadtest.relays import PROMETHEUS_SUMS, Relays
from perffarm.server import permissions
from perffarm.server.http.routetable import rule
from perffarm.server.services.loadtests import LoadTests

router = APIRouter(tags=["load tests"])
_PREFIX = "perffarm_loadtest_"


class LoadTestFigures(Collector):
    def __init__(self, tests: LoadTests, relay: Relays) -> None:
        self.tests = tests
        self.relay = relay

    def collect(self) -> Iterator[Metric]:
        for name, value in [*self.tests.counters.items(), *self.relay.counters.items()]:
            yield CounterMetricFamily(
                _PREFIX + name, f"{name.replace('_', ' ')} (this process)", value=value
            )
        live = sorted(self.relay.live_sums().items())
        for name in PROMETHEUS_SUMS:
            gauge = GaugeMetricFamily(
                _PREFIX + name, f"sum of the peers' latest {name}", labels=["test"]
            )
            for test_id, (sums, _) in live:
                gauge.add_metric([test_id], sums[name])
            yield gauge
        peers = GaugeMetricFamily(_PREFIX + "peers", "peers that sent metrics", labels=["test"])
        for test_id, (_, count) in live:
            peers.add_metric([test_id], count)
        yield peers


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    openapi_extra=rule(permissions.ANYONE),
)
def prometheus(request: Request) -> Response:
    """Prometheus text format: this process's load-test ingest and relay figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        LoadTestFigures(request.app.state.loadtests, request.app.state.loadtest_relay)
    )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
