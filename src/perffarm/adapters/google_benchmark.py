"""Google Benchmark's JSON (``--benchmark_format=json`` or ``--benchmark_out``).

Each ``run_type: iteration`` entry is one repetition: its ``real_time``, ``cpu_time``,
``bytes_per_second``, ``items_per_second`` and user counters become one sample of their
result. Aggregates (mean, median, stddev, cv, BigO) are derived figures: they go into
``extra``, except when the file has only aggregates (``--benchmark_report_aggregates_only``),
where the mean is the one sample. The benchmark name keeps the per-name arguments
(``BM_copy/64/threads:4``) as Google Benchmark writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, scalar_members
from perffarm.adapters.results import finite_or_none, make_result
from perffarm.model import Direction, Result

# Members of a run that are bookkeeping, not measured quantities.
_NOT_COUNTERS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type",
    "repetitions", "repetition_index", "threads", "iterations", "time_unit", "label",
    "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "big_o",
    "rms", "complexity_n", "skipped", "skip_message", "real_time", "cpu_time",
}  # fmt: skip
_RATES = {"bytes_per_second": "bytes/s", "items_per_second": "1/s"}


@dataclass
class _Run:
    """The repetitions of one ``run_name`` and what is known about them."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    aggregates: dict[str, dict[str, float | None]] = field(default_factory=dict)
    aggregate_means: dict[str, float] = field(default_factory=dict)
    iterations: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    threads: int | None = None
    label: str | None = None


class GoogleBenchmarkAdapter(Adapter):
    name = "google-benchmark"
    description = "Google Benchmark JSON (--benchmark_format=json, --benchmark_out)"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
            return False
        context = document.get("context")
        return isinstance(context, dict) and (
            "library_build_type" in context or "num_cpus" in context or "mhz_per_cpu" in context
        )

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        if (context := root.opt("context")) is not None:
            parsed.environment = scalar_members(context)
        runs: dict[str, _Run] = {}
        for entry in root.get("benchmarks").elements():
            _collect(entry, runs)
        where = root.file
        for run_name, run in runs.items():
            parsed.results.extend(_results(run_name, run, where))
        return parsed


def _collect(entry: Node, runs: dict[str, _Run]) -> None:
    run_name = (entry.opt("run_name") or entry.get("name")).text()
    run = runs.setdefault(run_name, _Run())
    run_type = entry.opt_text("run_type") or "iteration"
    if (threads := entry.opt("threads")) is not None:
        run.threads = threads.integer()
    if (label := entry.opt_text("label")) is not None:
        run.label = label
    error = entry.opt("error_occurred")
    if error is not None and error.value is True:
        run.errors.append(entry.opt_text("error_message") or "error")
        return
    skipped = entry.opt("skipped")
    if skipped is not None and skipped.value not in (False, 0):
        run.errors.append(entry.opt_text("skip_message") or "skipped")
        return
    time_unit = entry.opt_text("time_unit") or "ns"
    quantities: dict[str, tuple[float, str]] = {}
    for key in ("real_time", "cpu_time"):
        if key in entry:
            quantities[key] = (entry.get(key).number(), time_unit)
    for key, node in entry.items():
        if key in _NOT_COUNTERS or isinstance(node.value, str | dict | list | bool):
            continue
        quantities[key] = (node.number(), _RATES.get(key, ""))
    if run_type == "aggregate":
        aggregate = entry.opt_text("aggregate_name") or entry.get("name").text()
        # Like every figure copied into extra, aggregates stay in the tool's unit.
        for key, (value, unit) in quantities.items():
            run.aggregates.setdefault(key, {})[aggregate] = finite_or_none(value)
            if aggregate == "mean":
                run.aggregate_means[key] = value
                run.units.setdefault(key, unit)
        return
    for key, (value, unit) in quantities.items():
        run.samples.setdefault(key, []).append(value)
        run.units[key] = unit
    if (iterations := entry.opt("iterations")) is not None:
        run.iterations.append(iterations.integer())


def _results(run_name: str, run: _Run, where: str) -> list[Result]:
    extra_common: dict = {}
    if run.threads is not None:
        extra_common["threads"] = run.threads
    if run.label is not None:
        extra_common["label"] = run.label
    if run.errors:
        extra_common["errors"] = run.errors
    if run.iterations:
        extra_common["iterations"] = run.iterations
    samples = run.samples
    from_aggregate = False
    if not samples and run.aggregate_means:
        samples = {key: [value] for key, value in run.aggregate_means.items()}
        from_aggregate = True
    if not samples and run.errors:
        # Nothing was measured, but the failure is part of the run's story.
        return [make_result(run_name, "real_time", [], "ns", extra=extra_common, where=where)]
    results = []
    for key, values in samples.items():
        unit = run.units.get(key, "")
        extra = dict(extra_common)
        if key in run.aggregates:
            extra["aggregates"] = run.aggregates[key]
        if from_aggregate:
            extra["samples_from"] = "mean aggregate (the file has no iteration runs)"
        direction = Direction.HIGHER if key in _RATES else None
        results.append(
            make_result(run_name, key, values, unit, direction=direction, extra=extra, where=where)
        )
    return results
