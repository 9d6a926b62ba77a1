"""Rust's built-in ``cargo bench`` (libtest) output.

A line reads ``test name ... bench: 1,234 ns/iter (+/- 56)``.

libtest prints one figure per benchmark, the median time per iteration, with the spread
between the quartiles after it; with ``b.bytes`` set it adds ``= 123 MB/s``. Each becomes a
result with one sample.
"""

from __future__ import annotations

import re

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.json_input import source_name
from perffarm.adapters.results import make_result
from perffarm.adapters.text_input import line_error, numbered_lines, sniff_text
from perffarm.adapters.units import conversion
from perffarm.model import Direction

_BENCH_LINE = re.compile(
    r"^test\s+(?P<name>\S+)\s+\.\.\.\s+bench:\s+(?P<value>[0-9,._]+)\s+(?P<unit>\S+)/iter"
    r"(?:\s+\(\+/-\s+(?P<spread>[0-9,._]+)\))?(?:\s+=\s+(?P<rate>[0-9,._]+)\s+(?P<rate_unit>\S+))?\s*$"
)


class LibtestAdapter(Adapter):
    name = "libtest"
    description = "Rust libtest bench output (ns/iter lines)"

    def sniff(self, source: InputSource) -> bool:
        return bool(re.search(r"^test\s+\S+\s+\.\.\.\s+bench:\s", sniff_text(source), re.M))

    def parse(self, source: InputSource) -> Parsed:
        parsed = Parsed()
        for number, line in numbered_lines(source):
            if " ... bench:" not in line:
                continue
            match = _BENCH_LINE.match(line.strip())
            if match is None:
                raise line_error(
                    source, number, line, "expected 'test NAME ... bench: N ns/iter (+/- M)'"
                )
            try:
                value = _number(match.group("value"))
                spread = _number(match.group("spread")) if match.group("spread") else None
                rate = _number(match.group("rate")) if match.group("rate") else None
            except ValueError as exc:
                raise line_error(source, number, line, str(exc)) from None
            unit = match.group("unit")
            extra = {}
            if spread is not None:
                extra["spread_s"] = conversion(unit).apply(spread)
            where = f"{source_name(source)}: line {number}"
            name = match.group("name")
            parsed.results.append(
                make_result(name, "time", [value], unit, extra=extra, where=where)
            )
            if rate is not None:
                parsed.results.append(
                    make_result(
                        name,
                        "throughput",
                        [rate],
                        match.group("rate_unit"),
                        direction=Direction.HIGHER,
                        where=where,
                    )
                )
        if not parsed.results:
            raise AdapterError(f"{source_name(source)}: no 'test ... bench:' lines found")
        return parsed


def _number(text: str) -> float:
    cleaned = text.replace(",", "").replace("_", "")
    try:
        return float(cleaned)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
