"""``go test -bench`` text output (the Go benchmark format that benchstat reads).

A result line is ``BenchmarkName-P  N  v1 unit1  v2 unit2 ...``; each ``-count``
repetition is one more line and so one more sample. Sub-benchmark parts written as
``key=value`` (``BenchmarkFib/n=10``) become params, as does GOMAXPROCS (the ``-P`` suffix,
absent when it is 1). ``key: value`` header lines (goos, goarch, pkg, cpu) describe the
machine and go into the environment.
"""

from __future__ import annotations

import re

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.results import make_result, number_or_text
from perffarm.adapters.text_input import line_error, numbered_lines, sniff_text
from perffarm.model import Direction, ParamValue

_RESULT_LINE = re.compile(r"^(Benchmark\S*)\s+(\d+)\s+(.*)$")
_HEADER = re.compile(r"^([a-z][a-zA-Z0-9_-]*):\s*(.*)$")
_PROCS_SUFFIX = re.compile(r"-(\d+)$")
# Units go itself prints, with the metric name perffarm gives them.
_KNOWN_UNITS = {
    "ns/op": ("time", "ns/op"),
    "MB/s": ("throughput", "MB/s"),
    "B/op": ("allocated", "B/op"),
    "allocs/op": ("allocations", "allocs/op"),
}


class GoBenchAdapter(Adapter):
    name = "go-bench"
    description = "go test -bench text output"

    def sniff(self, source: InputSource) -> bool:
        for line in sniff_text(source).splitlines():
            match = _RESULT_LINE.match(line)
            if match and re.search(r"\s\S+/op\b|\sMB/s\b", " " + match.group(3)):
                return True
        return False

    def parse(self, source: InputSource) -> Parsed:
        parsed = Parsed()
        grouped: dict[tuple, dict] = {}
        package: str | None = None
        for number, line in numbered_lines(source):
            stripped = line.strip()
            if not stripped.startswith("Benchmark"):
                header = _HEADER.match(stripped)
                if header and header.group(1) in {"goos", "goarch", "pkg", "cpu"}:
                    key, value = header.group(1), header.group(2).strip()
                    if key == "pkg":
                        package = value
                        parsed.environment.setdefault("packages", []).append(value)
                    else:
                        parsed.environment[key] = value
                continue
            match = _RESULT_LINE.match(stripped)
            if match is None:
                # go prints a lone benchmark name before its result when the benchmark
                # logs; the numbers follow on a later line.
                if len(stripped.split()) == 1:
                    continue
                raise line_error(
                    source, number, stripped, "expected 'BenchmarkName N value unit ...'"
                )
            name, iterations, rest = match.groups()
            benchmark, params = _split_name(name)
            fields = rest.split()
            if not fields or len(fields) % 2:
                raise line_error(source, number, stripped, "values and units do not pair up")
            key = (package, benchmark, tuple(sorted(params.items(), key=lambda kv: kv[0])))
            entry = grouped.setdefault(
                key, {"params": params, "iterations": [], "metrics": {}, "line": number}
            )
            entry["iterations"].append(int(iterations))
            for value_text, unit in zip(fields[::2], fields[1::2], strict=True):
                try:
                    value = float(value_text)
                except ValueError:
                    raise line_error(
                        source, number, stripped, f"{value_text!r} is not a number"
                    ) from None
                entry["metrics"].setdefault(unit, []).append(value)
        for (package_name, benchmark, _), entry in grouped.items():
            extra: dict = {"iterations": entry["iterations"]}
            if package_name is not None:
                extra["pkg"] = package_name
            for unit, values in entry["metrics"].items():
                metric, unit_spelling = _KNOWN_UNITS.get(unit, (unit, unit))
                direction = Direction.HIGHER if unit.endswith("/s") else Direction.LOWER
                parsed.results.append(
                    make_result(
                        benchmark,
                        metric,
                        values,
                        unit_spelling,
                        params=entry["params"],
                        direction=direction,
                        extra=extra,
                        where=f"line {entry['line']}",
                    )
                )
        return parsed


def _split_name(name: str) -> tuple[str, dict[str, ParamValue]]:
    """``BenchmarkFib/n=10/fast-8`` -> ``("BenchmarkFib/fast", {"n": 10, "gomaxprocs": 8})``."""
    params: dict[str, ParamValue] = {}
    procs = _PROCS_SUFFIX.search(name)
    if procs:
        params["gomaxprocs"] = int(procs.group(1))
        name = name[: procs.start()]
    else:
        params["gomaxprocs"] = 1
    kept = []
    for index, part in enumerate(name.split("/")):
        key, equals, value = part.partition("=")
        if index > 0 and equals and key:
            params[key] = number_or_text(value)
        else:
            kept.append(part)
    return "/".join(kept), params
