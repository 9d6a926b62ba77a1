"""pytest-benchmark's JSON (``--benchmark-json`` and ``.benchmarks/`` saves).

``stats.data`` holds every round's time per iteration in seconds; older saves or
``--benchmark-disable-gc`` runs without ``data`` fall back to the mean as the only sample,
flagged in ``extra``. pytest's ``params`` become perffarm params, so the benchmark name is the
test's full name without the ``[param]`` suffix, which keeps one series per parameter set.
"""

from __future__ import annotations

import re
from datetime import datetime

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, scalar_members
from perffarm.adapters.results import make_result, params_of
from perffarm.model import Direction, Result, Source

_PARAM_SUFFIX = re.compile(r"\[[^\[\]]*\]$")
# Figures derived from the samples: kept for reference, recomputed by perffarm's statistics.
_STAT_KEYS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr")


class PytestBenchmarkAdapter(Adapter):
    name = "pytest-benchmark"
    description = "pytest-benchmark JSON (--benchmark-json, .benchmarks saves)"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        return (
            isinstance(document, dict)
            and "machine_info" in document
            and isinstance(document.get("benchmarks"), list)
        )

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        if (machine := root.opt("machine_info")) is not None:
            parsed.environment["machine_info"] = scalar_members(machine)
        if (version := root.opt_text("version")) is not None:
            parsed.environment["pytest_benchmark_version"] = version
        if (commit := root.opt("commit_info")) is not None:
            parsed.source = _source(commit)
        for entry in root.get("benchmarks").elements():
            parsed.results.extend(_results(entry))
        return parsed


def _results(entry: Node) -> list[Result]:
    fullname = (entry.opt("fullname") or entry.get("name")).text()
    params_node = entry.opt("params")
    params = params_of(params_node.object()) if params_node is not None else {}
    benchmark = _PARAM_SUFFIX.sub("", fullname) if params else fullname
    stats = entry.get("stats")
    data = stats.opt("data")
    reported = {key: stats.opt_number(key) for key in _STAT_KEYS if key in stats}
    extra: dict = {"reported": reported}
    for key in ("rounds", "iterations", "outliers", "total"):
        if (value := stats.opt(key)) is not None:
            extra[key] = value.value
    if (group := entry.opt_text("group")) is not None:
        extra["group"] = group
    if (info := entry.opt("extra_info")) is not None:
        extra["extra_info"] = scalar_members(info)
    if (options := entry.opt("options")) is not None:
        extra["options"] = scalar_members(options)
    if data is not None:
        samples = data.numbers()
    else:
        samples = [stats.get("mean").number()]
        extra["samples_from"] = "mean (the file has no stats.data)"
    where = f"{entry.file}: {entry.path}"
    results = [
        make_result(benchmark, "time", samples, "s", params=params, extra=extra, where=where)
    ]
    if (ops := stats.opt_number("ops")) is not None:
        results.append(
            make_result(
                benchmark,
                "ops",
                [ops],
                "1/s",
                params=params,
                direction=Direction.HIGHER,
                extra={"derived_from": "1 / mean"},
                where=where,
            )
        )
    return results


def _source(commit: Node) -> Source:
    branch = commit.opt_text("branch")
    commit_id = commit.opt_text("id")
    time_text = commit.opt_text("time")
    commit_time = None
    if time_text:
        try:
            parsed_time = datetime.fromisoformat(time_text)
        except ValueError:
            raise commit.get("time").error(f"not an ISO date: {time_text!r}") from None
        commit_time = parsed_time if parsed_time.tzinfo is not None else None
    dirty = commit.opt("dirty")
    return Source(
        branch=None if branch in (None, "(unknown)") else branch,
        commit=None if commit_id in (None, "unversioned") else commit_id,
        commit_time=commit_time,
        dirty=dirty.value if dirty is not None and isinstance(dirty.value, bool) else None,
    )
