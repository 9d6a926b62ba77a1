"""Vitest's benchmark JSON (``vitest bench --outputJson``), whose figures come from tinybench.

Times are milliseconds. When the file keeps the ``samples`` they are the samples; newer
Vitest versions drop them and keep only statistics, and then the mean is the one sample.
``hz`` (operations per second) is a second result; the percentiles, ``rme`` and the rank are
kept in ``extra``. The benchmark is ``group > name``.
"""

from __future__ import annotations

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek
from perffarm.adapters.results import finite_or_none, make_result
from perffarm.model import Direction, Result

_KEPT = ("min", "max", "mean", "median", "sd", "sem", "moe", "rme", "p75", "p99", "p995",
         "p999", "sampleCount", "totalTime", "rank", "period")  # fmt: skip


class VitestAdapter(Adapter):
    name = "vitest"
    description = "Vitest bench JSON (--outputJson)"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        if not isinstance(document, dict) or not isinstance(document.get("files"), list):
            return False
        first = next(iter(document["files"]), None)
        return isinstance(first, dict) and "groups" in first

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        for file in root.get("files").elements():
            for group in file.get("groups").elements():
                group_name = group.opt_text("fullName") or file.opt_text("filepath") or ""
                for entry in group.get("benchmarks").elements():
                    parsed.results.extend(_results(group_name, entry))
        return parsed


def _results(group_name: str, entry: Node) -> list[Result]:
    name = entry.get("name").text()
    benchmark = f"{group_name} > {name}" if group_name else name
    extra: dict[str, float | str | None] = {
        key: finite_or_none(entry.get(key).number()) for key in _KEPT if key in entry
    }
    samples_node = entry.opt("samples")
    samples = samples_node.numbers() if samples_node is not None else []
    if not samples:
        samples = [entry.get("mean").number()]
        extra["samples_from"] = "mean (the file keeps no samples)"
    where = f"{entry.file}: {entry.path}"
    results = [make_result(benchmark, "time", samples, "ms", extra=extra, where=where)]
    if (hz := entry.opt_number("hz")) is not None:
        results.append(
            make_result(
                benchmark, "throughput", [hz], "ops/s", direction=Direction.HIGHER, where=where
            )
        )
    return results
