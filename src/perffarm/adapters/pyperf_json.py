"""pyperf's JSON (``-o file.json``, also gzip-compressed ``.json.gz``) and pyperformance's.

Every run's ``values`` are samples and its ``warmups`` (``[loops, value]`` pairs) are
warm-up samples; calibration runs have warm-ups only. Each run's ``mem_max_rss`` is a second
metric. Metadata shared by all benchmarks (CPU, platform, Python) is the environment.
"""

from __future__ import annotations

from typing import Any

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, scalar_members
from perffarm.adapters.results import make_result
from perffarm.model import Result

# pyperf's unit names, in the spelling perffarm's unit table reads.
_UNITS = {"second": "s", "byte": "bytes", "integer": ""}
_ENVIRONMENT_KEYS = {"name", "loops", "unit", "inner_loops", "description"}


class PyperfAdapter(Adapter):
    name = "pyperf"
    description = "pyperf / pyperformance JSON (optionally gzip-compressed)"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
            return False
        first = next(iter(document["benchmarks"]), None)
        return "version" in document and isinstance(first, dict) and "runs" in first

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        common = root.opt("metadata")
        common_metadata = scalar_members(common) if common is not None else {}
        parsed = Parsed(
            environment={
                key: value for key, value in common_metadata.items() if key not in _ENVIRONMENT_KEYS
            }
        )
        for entry in root.get("benchmarks").elements():
            parsed.results.extend(_results(entry, common_metadata))
        return parsed


def _results(entry: Node, common: dict[str, Any]) -> list[Result]:
    own = entry.opt("metadata")
    metadata = {**common, **(scalar_members(own) if own is not None else {})}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise (own or entry).error("benchmark has no name in its metadata")
    unit_name = metadata.get("unit", "second")
    if not isinstance(unit_name, str):
        raise (own or entry).error(f"unit must be a string, found {unit_name!r}")
    unit = _UNITS.get(unit_name, unit_name)
    values: list[float] = []
    warmups: list[float] = []
    max_rss: list[float] = []
    loops: list[int] = []
    shared_rss = metadata.get("mem_max_rss")
    for run in entry.get("runs").elements():
        if (run_values := run.opt("values")) is not None:
            values.extend(run_values.numbers())
        if (run_warmups := run.opt("warmups")) is not None:
            for pair in run_warmups.elements():
                warmups.append(pair.at(1).number())
        run_metadata = run.opt("metadata")
        rss = run_metadata.opt_number("mem_max_rss") if run_metadata is not None else None
        if rss is None and isinstance(shared_rss, int | float) and not isinstance(shared_rss, bool):
            # pyperf moves a value every run shares into the benchmark's (or the file's)
            # metadata: identical peaks of memory are then nowhere in the runs themselves.
            rss = float(shared_rss)
        if rss is not None:
            max_rss.append(rss)
        if run_metadata is not None and (run_loops := run_metadata.opt("loops")) is not None:
            loops.append(run_loops.integer())
    extra: dict = {}
    if "loops" in metadata or loops:
        extra["loops"] = loops or metadata["loops"]
    if "inner_loops" in metadata:
        extra["inner_loops"] = metadata["inner_loops"]
    metric = "time" if unit == "s" else "value"
    where = f"{entry.file}: {entry.path}"
    results = [
        make_result(name, metric, values, unit, warmup_samples=warmups, extra=extra, where=where)
    ]
    if max_rss:
        results.append(make_result(name, "max RSS", max_rss, "bytes", where=where))
    return results
