"""BenchmarkDotNet's JSON exporters (``[JsonExporterAttribute.Full]``, brief and default).

The full export lists every measurement: ``Workload``/``Result`` iterations are the samples
(nanoseconds / operations = time per operation), ``Workload``/``Warmup`` ones the warm-up
samples. Without measurements (brief export) the statistics' ``OriginalValues`` are the
samples, else the mean. Memory diagnoser figures (allocated bytes per operation, GC counts)
are results of their own. ``Parameters`` (``N=10, Mode=fast``) become params.
"""

from __future__ import annotations

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, scalar_members
from perffarm.adapters.results import make_result, number_or_text
from perffarm.model import ParamValue, Result

_MEMORY_METRICS = {
    "BytesAllocatedPerOperation": ("allocated per operation", "B"),
    "Gen0Collections": ("gen0 collections", ""),
    "Gen1Collections": ("gen1 collections", ""),
    "Gen2Collections": ("gen2 collections", ""),
}


class BenchmarkDotNetAdapter(Adapter):
    name = "benchmarkdotnet"
    description = "BenchmarkDotNet JSON export (full, brief or default)"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        return (
            isinstance(document, dict)
            and "HostEnvironmentInfo" in document
            and isinstance(document.get("Benchmarks"), list)
        )

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        if (host := root.opt("HostEnvironmentInfo")) is not None:
            parsed.environment = scalar_members(host)
        for entry in root.get("Benchmarks").elements():
            parsed.results.extend(_results(entry))
        return parsed


def _results(entry: Node) -> list[Result]:
    type_name = entry.opt_text("Type") or ""
    namespace = entry.opt_text("Namespace") or ""
    method = entry.opt_text("Method") or entry.get("FullName").text()
    benchmark = ".".join(part for part in (namespace, type_name, method) if part)
    params = _params(entry.opt_text("Parameters") or "")
    where = f"{entry.file}: {entry.path}"
    samples: list[float] = []
    warmups: list[float] = []
    measurements = entry.opt("Measurements")
    extra: dict = {}
    if measurements is not None and measurements.list():
        for measurement in measurements.elements():
            if measurement.opt_text("IterationMode") != "Workload":
                continue
            operations = measurement.get("Operations").number()
            nanoseconds = measurement.get("Nanoseconds").number()
            per_operation = nanoseconds / operations if operations else float("nan")
            stage = measurement.opt_text("IterationStage")
            if stage == "Result":
                samples.append(per_operation)
            elif stage == "Warmup":
                warmups.append(per_operation)
    statistics = entry.opt("Statistics")
    if not samples and statistics is not None:
        if (original := statistics.opt("OriginalValues")) is not None and original.list():
            samples = original.numbers()
        else:
            samples = [statistics.get("Mean").number()]
            extra["samples_from"] = "Statistics.Mean"
    if statistics is not None:
        extra["statistics"] = {
            key: node.value
            for key, node in statistics.items()
            if isinstance(node.value, int | float) and key != "OriginalValues"
        }
    results = [
        make_result(
            benchmark,
            "time",
            samples,
            "ns",
            params=params,
            warmup_samples=warmups,
            extra=extra,
            where=where,
        )
    ]
    if (memory := entry.opt("Memory")) is not None:
        total_operations = memory.opt_number("TotalOperations")
        for key, (metric, unit) in _MEMORY_METRICS.items():
            if (value := memory.opt_number(key)) is None:
                continue
            # GC counts are totals over the run; per 1000 operations is what BDN prints.
            if unit == "" and total_operations:
                value = value * 1000 / total_operations
                metric = f"{metric} per 1000 operations"
            results.append(
                make_result(benchmark, metric, [value], unit, params=params, where=where)
            )
    return results


def _params(text: str) -> dict[str, ParamValue]:
    params: dict[str, ParamValue] = {}
    for part in text.split(", "):
        key, equals, value = part.partition("=")
        if equals and key.strip():
            params[key.strip()] = number_or_text(value.strip())
    return params
