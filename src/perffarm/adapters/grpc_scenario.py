"""The gRPC QPS benchmark driver's ``ScenarioResult`` JSON (protobuf JSON names).

``summary`` holds the figures the gRPC performance dashboard shows: QPS, latency
percentiles (nanoseconds, converted to seconds), CPU use (percent), requests per second,
polls per request and queries per CPU-second; each is one result with one sample, named
after the scenario. Per-client and per-server statistics (elapsed, user and system
seconds) give one sample per client or server. The scenario's configuration is kept in
the environment and, flattened to scalars (``scenario_params``), as every result's params;
request status counts and the summary's start and end times in ``extra``; the merged
latency histogram as the attachment ``LATENCY_HISTOGRAM``.

The same conversion serves the driver's ``--scenario_result_file`` and the results the
results server receives over gRPC (``grpc.testing.ReportQpsScenarioService``): the server
turns the received message into this JSON shape with ``MessageToDict``. Fields left out
(proto3 JSON omits defaults unless asked not to) read as their protobuf default, so the
two shapes give the same params.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, scalar_members
from perffarm.adapters.results import make_result, param_value
from perffarm.model import Attachment, Direction, ParamValue, Result

_LATENCY = re.compile(r"^latency(\d+)$")
_PERCENT_FIELDS = {
    "serverSystemTime", "serverUserTime", "clientSystemTime", "clientUserTime", "serverCpuUsage",
}  # fmt: skip
_HIGHER_IS_BETTER = {
    "qps", "qpsPerServerCore", "successfulRequestsPerSecond", "serverQueriesPerCpuSec",
    "clientQueriesPerCpuSec",
}  # fmt: skip
_PER_SECOND = {
    "qps", "qpsPerServerCore", "successfulRequestsPerSecond", "failedRequestsPerSecond",
    "serverQueriesPerCpuSec", "clientQueriesPerCpuSec",
}  # fmt: skip
_STATS_TIMES = ("timeElapsed", "timeUser", "timeSystem")
_TIMES = ("startTime", "endTime")
#: The attachment holding the merged latency histogram (JSON, nanoseconds).
LATENCY_HISTOGRAM = "grpc-scenario.latencies.json"

# Scenario settings kept as params: (param, path in the JSON, protobuf default).
_SCENARIO_FIELDS = (
    ("num_clients", ("numClients",), 0),
    ("num_servers", ("numServers",), 0),
    ("warmup_seconds", ("warmupSeconds",), 0),
    ("benchmark_seconds", ("benchmarkSeconds",), 0),
    ("client_type", ("clientConfig", "clientType"), "SYNC_CLIENT"),
    ("server_type", ("serverConfig", "serverType"), "SYNC_SERVER"),
    ("rpc_type", ("clientConfig", "rpcType"), "UNARY"),
    ("outstanding_rpcs_per_channel", ("clientConfig", "outstandingRpcsPerChannel"), 0),
    ("client_channels", ("clientConfig", "clientChannels"), 0),
    ("async_client_threads", ("clientConfig", "asyncClientThreads"), 0),
    ("async_server_threads", ("serverConfig", "asyncServerThreads"), 0),
)


class GrpcScenarioAdapter(Adapter):
    name = "grpc-scenario"
    description = "gRPC benchmark driver ScenarioResult JSON"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        return (
            isinstance(document, dict)
            and isinstance(document.get("scenario"), dict)
            and isinstance(document.get("summary"), dict)
        )

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        scenario = root.get("scenario")
        name = scenario.opt_text("name") or "scenario"
        parsed = Parsed(environment={"scenario": scalar_members(scenario)})
        params = scenario_params(scenario.object())
        if (cores := root.opt("serverCores")) is not None:
            parsed.environment["server_cores"] = [core.integer() for core in cores.elements()]
        extra: dict = {}
        summary = root.get("summary")
        for key in _TIMES:
            if (stamp := summary.opt(key)) is not None and isinstance(stamp.value, str):
                extra[key] = stamp.value
        for key in ("clientSuccess", "serverSuccess"):
            if (flags := root.opt(key)) is not None:
                extra[key] = flags.value
        if (requests := root.opt("requestResults")) is not None:
            # proto3 JSON leaves out a zero statusCode (OK).
            extra["request_results"] = {
                str(int(item.opt_number("statusCode") or 0)): item.get("count").integer()
                for item in requests.elements()
            }
        for key, node in summary.items():
            if key in _TIMES or (isinstance(node.value, str) and not _numeric_text(node.value)):
                continue
            parsed.results.append(_summary_result(name, key, node, extra, params))
        for key in ("clientStats", "serverStats"):
            if (stats := root.opt(key)) is not None:
                parsed.results.extend(_stats_results(name, key, stats, params))
        if (latencies := root.opt("latencies")) is not None and latencies.is_object():
            parsed.attachments.append(_histogram_attachment(scenario.object(), latencies))
        return parsed


def _at(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _scalar(value: Any, default: ParamValue) -> ParamValue:
    """A setting as its protobuf default when absent; int64 (JSON strings) as numbers."""
    if value is None:
        return default
    if isinstance(default, int) and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return param_value(value)


def scenario_params(scenario: dict[str, Any]) -> dict[str, ParamValue]:
    """The scenario's configuration as scalar params (snake_case, protobuf defaults filled).

    Load: ``load`` is ``closed-loop`` or ``poisson`` (with ``offered_load``, requests per
    second); payload: ``payload`` (``simple``, ``bytebuf`` or ``complex``) with
    ``req_size`` and ``resp_size`` in bytes; ``secure`` tells whether the benchmark used TLS.
    """
    params: dict[str, ParamValue] = {
        param: _scalar(_at(scenario, path), default) for param, path, default in _SCENARIO_FIELDS
    }
    load = _at(scenario, ("clientConfig", "loadParams")) or {}
    if isinstance(load, dict) and "poisson" in load:
        params["load"] = "poisson"
        offered = load["poisson"].get("offeredLoad", 0) if isinstance(load["poisson"], dict) else 0
        params["offered_load"] = _scalar(offered, 0.0)
    else:
        params["load"] = "closed-loop"
    payload = _at(scenario, ("clientConfig", "payloadConfig")) or {}
    for kind, key in (("simple", "simpleParams"), ("bytebuf", "bytebufParams")):
        if isinstance(payload, dict) and isinstance(payload.get(key), dict):
            params["payload"] = kind
            params["req_size"] = _scalar(payload[key].get("reqSize"), 0)
            params["resp_size"] = _scalar(payload[key].get("respSize"), 0)
            break
    else:
        if isinstance(payload, dict) and "complexParams" in payload:
            params["payload"] = "complex"
    params["secure"] = _at(scenario, ("clientConfig", "securityParams")) is not None
    return params


def _histogram_attachment(scenario: dict[str, Any], latencies: Node) -> Attachment:
    """The merged latency histogram with the parameters needed to read its buckets."""
    data = latencies.object()
    buckets = data.get("bucket")
    histogram = {
        "unit": "ns",
        "resolution": _at(scenario, ("clientConfig", "histogramParams", "resolution")),
        "max_possible": _at(scenario, ("clientConfig", "histogramParams", "maxPossible")),
        "bucket": [_count(b) for b in buckets] if isinstance(buckets, list) else [],
        **{
            key: _finite(data.get(field))
            for key, field in (
                ("min_seen", "minSeen"),
                ("max_seen", "maxSeen"),
                ("sum", "sum"),
                ("sum_of_squares", "sumOfSquares"),
                ("count", "count"),
            )
        },
    }
    text = json.dumps(histogram, separators=(",", ":"))
    return Attachment.from_bytes(LATENCY_HISTOGRAM, text.encode(), "application/json")


def _count(value: Any) -> int:
    number = _finite(value)
    return int(number) if number is not None and number >= 0 else 0


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numeric_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _summary_result(
    name: str, key: str, node: Node, extra: dict, params: dict[str, ParamValue]
) -> Result:
    value = node.number() if not isinstance(node.value, str) else float(node.value)
    if _LATENCY.match(key):
        unit, direction = "ns", Direction.LOWER
    elif key in _PERCENT_FIELDS:
        unit, direction = "%", Direction.LOWER
    elif key in _PER_SECOND:
        unit, direction = "1/s", Direction.HIGHER
    else:
        unit = ""
        direction = Direction.HIGHER if key in _HIGHER_IS_BETTER else Direction.LOWER
    return make_result(
        name,
        key,
        [value],
        unit,
        params=params,
        direction=direction,
        extra=extra,
        where=f"{node.file}: {node.path}",
    )


def _stats_results(name: str, key: str, stats: Node, params: dict[str, ParamValue]) -> list[Result]:
    side = "client" if key == "clientStats" else "server"
    samples: dict[str, list[float]] = {}
    for entry in stats.elements():
        for field in _STATS_TIMES:
            if (value := entry.opt_number(field)) is not None:
                samples.setdefault(field, []).append(value)
        if (polls := entry.opt("cqPollCount")) is not None:
            samples.setdefault("cqPollCount", []).append(polls.number())
    return [
        make_result(
            name,
            f"{side} {field}",
            values,
            "" if field == "cqPollCount" else "s",
            params=params,
            where=f"{stats.file}: {stats.path}",
        )
        for field, values in samples.items()
    ]


class GrpcQpsAdapter(GrpcScenarioAdapter):
    """``format: grpc-qps`` of the ``command`` measurement: gRPC's qps_json_driver run by
    ``perffarm run``. The same conversion as ``grpc-scenario``; the measurement adds
    ``--scenario_result_file`` to the command when no ``output_file`` is given. Never
    detected from content (``grpc-scenario`` is)."""

    name = "grpc-qps"
    description = "gRPC qps_json_driver run by a command measurement (ScenarioResult JSON)"

    def sniff(self, source: InputSource) -> bool:
        return False
