"""The gRPC QPS benchmark driver's ``ScenarioResult`` JSON (protobuf JSON names).

``summary`` holds the figures the gRPC performance dashboard shows: QPS, latency
percentiles (nanoseconds), CPU use (percent) and polls per request; each is one result
with one sample, named after the scenario. Per-client and per-server statistics
(elapsed, user and system seconds) give one sample per client or server. The scenario's
configuration is kept in the environment; request status counts in ``extra``.
"""

from __future__ import annotations

import re

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, scalar_members
from perffarm.adapters.results import make_result
from perffarm.model import Direction, Result

_LATENCY = re.compile(r"^latency(\d+)$")
_PERCENT_FIELDS = {
    "serverSystemTime", "serverUserTime", "clientSystemTime", "clientUserTime", "serverCpuUsage",
}  # fmt: skip
_HIGHER_IS_BETTER = {
    "qps", "qpsPerServerCore", "successfulRequestsPerSecond", "serverQueriesPerCpuSec",
    "clientQueriesPerCpuSec",
}  # fmt: skip
_PER_SECOND = {"qps", "successfulRequestsPerSecond", "failedRequestsPerSecond"}
_STATS_TIMES = ("timeElapsed", "timeUser", "timeSystem")


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
        if (cores := root.opt("serverCores")) is not None:
            parsed.environment["server_cores"] = [core.integer() for core in cores.elements()]
        extra: dict = {}
        for key in ("clientSuccess", "serverSuccess"):
            if (flags := root.opt(key)) is not None:
                extra[key] = flags.value
        if (requests := root.opt("requestResults")) is not None:
            # proto3 JSON leaves out a zero statusCode (OK).
            extra["request_results"] = {
                str(int(item.opt_number("statusCode") or 0)): item.get("count").integer()
                for item in requests.elements()
            }
        for key, node in root.get("summary").items():
            if isinstance(node.value, str) and not _numeric_text(node.value):
                extra[key] = node.value  # startTime / endTime timestamps
                continue
            parsed.results.append(_summary_result(name, key, node, extra))
        for key in ("clientStats", "serverStats"):
            if (stats := root.opt(key)) is not None:
                parsed.results.extend(_stats_results(name, key, stats))
        return parsed


def _numeric_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _summary_result(name: str, key: str, node: Node, extra: dict) -> Result:
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
        direction=direction,
        extra=extra,
        where=f"{node.file}: {node.path}",
    )


def _stats_results(name: str, key: str, stats: Node) -> list[Result]:
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
            where=f"{stats.file}: {stats.path}",
        )
        for field, values in samples.items()
    ]
