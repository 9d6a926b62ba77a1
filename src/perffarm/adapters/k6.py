"""k6's end-of-test summary: ``--summary-export`` JSON and the ``handleSummary`` data object.

Every statistic of every metric is a result: the benchmark is the k6 metric
(``http_req_duration``), the metric is the statistic (``avg``, ``p(95)``, ``rate``), and a
sub-metric's tags (``http_req_duration{expected_response:true}``) become params. k6 gives
each statistic once, so each result has one sample. Times are milliseconds; ``data_*``
counters are bytes. ``handleSummary`` data says which metrics hold times or data
(``contains``); for the older export the built-in metric names tell.
"""

from __future__ import annotations

import re

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, scalar_members
from perffarm.adapters.results import make_result
from perffarm.model import Direction, ParamValue, Result

_SUBMETRIC = re.compile(r"^([^{]+)\{(.*)\}$")
_BUILTIN_TIMES = {
    "http_req_duration", "http_req_blocked", "http_req_connecting", "http_req_tls_handshaking",
    "http_req_sending", "http_req_waiting", "http_req_receiving", "iteration_duration",
    "group_duration", "ws_session_duration", "ws_connecting", "ws_ping", "grpc_req_duration",
}  # fmt: skip
_BUILTIN_DATA = {"data_sent", "data_received"}
# Rates where a higher share is better; every other rate (http_req_failed) is a failure share.
_GOOD_RATES = {"checks"}
_NOT_STATISTICS = {"thresholds", "type", "contains"}


class K6Adapter(Adapter):
    name = "k6"
    description = "k6 summary JSON (--summary-export, handleSummary data)"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        return (
            isinstance(document, dict)
            and isinstance(document.get("metrics"), dict)
            and isinstance(document.get("root_group"), dict)
        )

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        if (state := root.opt("state")) is not None:
            parsed.environment["state"] = scalar_members(state)
        if (options := root.opt("options")) is not None:
            parsed.environment["options"] = scalar_members(options)
        for name, metric in root.get("metrics").items():
            parsed.results.extend(_results(name, metric))
        checks = _checks(root.get("root_group"))
        if checks:
            parsed.environment["checks"] = checks
        return parsed


def _results(full_name: str, metric: Node) -> list[Result]:
    base, params = _split_tags(full_name)
    handle_summary = "values" in metric
    statistics = metric.get("values") if handle_summary else metric
    kind = metric.opt_text("type") if handle_summary else _legacy_type(statistics)
    contains = metric.opt_text("contains") if handle_summary else None
    if contains is None:
        contains = "time" if base in _BUILTIN_TIMES else "data" if base in _BUILTIN_DATA else ""
    extra: dict = {"type": kind}
    if (thresholds := metric.opt("thresholds")) is not None:
        extra["thresholds"] = scalar_members(thresholds)
    results = []
    for statistic, node in statistics.items():
        if statistic in _NOT_STATISTICS:
            continue
        unit, direction = _unit(base, kind, contains, statistic)
        results.append(
            make_result(
                base,
                statistic,
                [node.number()],
                unit,
                params=params,
                direction=direction,
                extra=extra,
                where=f"{node.file}: {node.path}",
            )
        )
    return results


def _split_tags(name: str) -> tuple[str, dict[str, ParamValue]]:
    match = _SUBMETRIC.match(name)
    if match is None:
        return name, {}
    params: dict[str, ParamValue] = {}
    for tag in match.group(2).split(","):
        key, _, value = tag.partition(":")
        if key.strip():
            params[key.strip()] = value.strip()
    return match.group(1), params


def _legacy_type(statistics: Node) -> str:
    keys = set(statistics.object())
    if "passes" in keys:
        return "rate"
    if "count" in keys:
        return "counter"
    if "avg" in keys or "med" in keys:
        return "trend"
    return "gauge"


def _unit(base: str, kind: str | None, contains: str, statistic: str) -> tuple[str, Direction]:
    """The unit k6 reports ``statistic`` of metric ``base`` in, and which way is better."""
    if kind == "rate":
        # A rate metric counts "passes" (non-zero samples): good for checks, failures for
        # http_req_failed. Its value/rate is the share of passes.
        passes_are_good = base in _GOOD_RATES
        counts_passes = statistic in ("rate", "value", "passes")
        good = counts_passes == passes_are_good
        return "", Direction.HIGHER if good else Direction.LOWER
    if kind == "counter":
        if statistic == "rate":
            return ("B/s" if contains == "data" else "1/s"), Direction.HIGHER
        return ("B" if contains == "data" else ""), Direction.HIGHER
    if contains == "time":
        return "ms", Direction.LOWER
    if contains == "data":
        return "B", Direction.LOWER
    return "", Direction.LOWER


def _checks(group: Node) -> dict:
    """Pass and fail counts of every check, in every group, by path."""
    found: dict = {}
    if (checks := group.opt("checks")) is not None:
        # handleSummary writes a list of checks, the older export an object of them.
        entries = checks.elements() if checks.is_list() else (node for _, node in checks.items())
        for check in entries:
            path = check.opt_text("path") or check.opt_text("name") or "check"
            found[path] = {
                "passes": check.get("passes").integer(),
                "fails": check.get("fails").integer(),
            }
    if (groups := group.opt("groups")) is not None:
        children = groups.elements() if groups.is_list() else (node for _, node in groups.items())
        for child in children:
            found.update(_checks(child))
    return found
