"""Bencher Metric Format (BMF) JSON, so that a team moves its Bencher history over.

``{"benchmark": {"measure": {"value": v, "lower_value": l, "upper_value": u}}}``: each
benchmark × measure is one result with ``value`` as its sample and the bounds in ``extra``.
Bencher's built-in measures have fixed units (latency in nanoseconds, throughput in
operations per second, file size in bytes, build time in seconds); other measures keep
their value as written.
"""

from __future__ import annotations

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import load, peek
from perffarm.adapters.results import finite_or_none, make_result
from perffarm.model import Direction

_MEASURE_UNITS = {
    "latency": ("ns", Direction.LOWER),
    "throughput": ("ops/s", Direction.HIGHER),
    "file-size": ("B", Direction.LOWER),
    "build-time": ("s", Direction.LOWER),
    "iterations": ("", Direction.LOWER),
}


class BencherAdapter(Adapter):
    name = "bencher"
    description = "Bencher Metric Format (BMF) JSON"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        if not isinstance(document, dict) or not document:
            return False
        return all(
            isinstance(measures, dict)
            and measures
            and all(
                isinstance(measure, dict) and isinstance(measure.get("value"), int | float)
                for measure in measures.values()
            )
            for measures in document.values()
        )

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        for benchmark, measures in root.items():
            for measure, node in measures.items():
                unit, direction = _MEASURE_UNITS.get(measure, ("", Direction.LOWER))
                extra = {}
                for bound in ("lower_value", "upper_value"):
                    if (value := node.opt_number(bound)) is not None:
                        extra[bound] = finite_or_none(value)
                parsed.results.append(
                    make_result(
                        benchmark,
                        measure,
                        [node.get("value").number()],
                        unit,
                        direction=direction,
                        extra=extra,
                        where=f"{node.file}: {node.path}",
                    )
                )
        return parsed
