"""JMH's JSON result file (``-rf json``).

Every benchmark × mode × params entry gives a primary result whose samples are the
measurement iterations of every fork (``rawData``), and one result per secondary metric
(profilers such as ``-prof gc``: ``·gc.alloc.rate.norm``). Sample-mode histograms are
expanded into samples up to ``HISTOGRAM_LIMIT`` values; beyond that the percentiles JMH
computed are kept in ``extra`` instead. JMH writes "NaN" as a string where a score is
undefined; such values are dropped and listed in ``extra``. JMH's ``MB/sec`` (GC profiler)
means MiB per second.
"""

from __future__ import annotations

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek
from perffarm.adapters.results import finite_or_none, make_result
from perffarm.model import ParamValue, Result

HISTOGRAM_LIMIT = 100_000
_MODE_METRICS = {
    "thrpt": "throughput",
    "avgt": "average time",
    "sample": "sample time",
    "ss": "single shot time",
}
_ENVIRONMENT_KEYS = ("jmhVersion", "jvm", "jdkVersion", "vmName", "vmVersion", "jvmArgs")
_SETTINGS_KEYS = (
    "forks", "warmupIterations", "warmupTime", "warmupBatchSize",
    "measurementIterations", "measurementTime", "measurementBatchSize",
)  # fmt: skip


class JmhAdapter(Adapter):
    name = "jmh"
    description = "JMH JSON results (-rf json)"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        if not isinstance(document, list) or not document:
            return False
        first = document[0]
        return isinstance(first, dict) and "benchmark" in first and "primaryMetric" in first

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        for entry in root.elements():
            if not parsed.environment:
                parsed.environment = {
                    key: entry.get(key).value for key in _ENVIRONMENT_KEYS if key in entry
                }
            parsed.results.extend(_results(entry))
        return parsed


def _results(entry: Node) -> list[Result]:
    benchmark = entry.get("benchmark").text()
    mode = entry.get("mode").text()
    params: dict[str, ParamValue] = {}
    if (threads := entry.opt("threads")) is not None:
        params["threads"] = threads.integer()
    if (jmh_params := entry.opt("params")) is not None:
        # JMH params are strings in the file and in @Param; keeping them as written keeps
        # "010" and "10" apart.
        params.update({key: _param_text(node) for key, node in jmh_params.items()})
    settings = {key: entry.get(key).value for key in _SETTINGS_KEYS if key in entry}
    primary = entry.get("primaryMetric")
    metric = _MODE_METRICS.get(mode, mode)
    results = [_metric_result(benchmark, metric, primary, params, {"mode": mode, **settings})]
    if (secondary := entry.opt("secondaryMetrics")) is not None:
        for name, node in secondary.items():
            clean_name = name.lstrip("\u00b7").strip() or name
            results.append(_metric_result(benchmark, clean_name, node, params, {"mode": mode}))
    return results


def _param_text(node: Node) -> ParamValue:
    if isinstance(node.value, bool | int | float | str):
        return node.value if isinstance(node.value, str) else str(node.value)
    raise node.error("a JMH parameter must be a scalar")


def _metric_result(
    benchmark: str, metric: str, node: Node, params: dict[str, ParamValue], extra: dict
) -> Result:
    reported_unit = node.get("scoreUnit").text()
    unit = reported_unit.replace("/sec", "/s")
    if unit.startswith("MB/"):
        unit = "MiB/" + unit[3:]
    score = node.get("score").number()
    extra = dict(extra)
    extra["score"] = finite_or_none(score)
    if (error := node.opt("scoreError")) is not None:
        extra["score_error"] = finite_or_none(error.number())
    if (interval := node.opt("scoreConfidence")) is not None:
        extra["score_confidence"] = [
            finite_or_none(bound.number()) for bound in interval.elements()
        ]
    if (percentiles := node.opt("scorePercentiles")) is not None:
        extra["score_percentiles"] = {
            key: finite_or_none(value.number()) for key, value in percentiles.items()
        }
    samples, per_fork = _samples(node)
    if per_fork is not None:
        extra["samples_per_fork"] = per_fork
    if samples is None:
        samples = [score]
        extra["samples_from"] = "score (no raw data small enough to keep)"
    where = f"{node.file}: {node.path}"
    return make_result(
        benchmark,
        metric,
        samples,
        unit,
        params=params,
        extra=extra,
        reported_unit=reported_unit,
        where=where,
    )


def _samples(node: Node) -> tuple[list[float] | None, list[int] | None]:
    """Samples of every fork, flattened, and how many each fork gave."""
    raw = node.opt("rawData")
    if raw is not None and raw.list():
        forks = [fork.numbers() for fork in raw.elements()]
        return [value for fork in forks for value in fork], [len(fork) for fork in forks]
    histogram = node.opt("rawDataHistogram")
    if histogram is None:
        return None, None
    histogram_forks: list[list[float]] = []
    total = 0
    for fork in histogram.elements():
        values: list[float] = []
        for iteration in fork.elements():
            for pair in iteration.elements():
                value, count = pair.at(0).number(), pair.at(1).integer()
                total += count
                if total > HISTOGRAM_LIMIT:
                    return None, None
                values.extend([value] * count)
        histogram_forks.append(values)
    return (
        [value for fork in histogram_forks for value in fork],
        [len(fork) for fork in histogram_forks],
    )
