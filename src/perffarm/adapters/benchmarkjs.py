"""Benchmark.js text output: ``name x 1,234,567 ops/sec ±0.52% (92 runs sampled)``.

Each line is one benchmark's mean rate: a result with one sample, in operations per
second, with the relative margin of error and the number of runs in ``extra``.
"""

from __future__ import annotations

import re

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.json_input import source_name
from perffarm.adapters.results import make_result
from perffarm.adapters.text_input import line_error, numbered_lines, sniff_text
from perffarm.model import Direction

_LINE = re.compile(
    r"^(?P<name>.+?) x (?P<hz>[0-9][0-9,]*(?:\.[0-9]+)?) ops/sec "
    r"(?:±|\+/-|\+-)\s*(?P<rme>[0-9.]+)% \((?P<runs>[0-9,]+) runs? sampled\)\s*$"
)
_LOOSE = re.compile(r" x [0-9][0-9,.]* ops/sec ")


class BenchmarkJsAdapter(Adapter):
    name = "benchmarkjs"
    description = "Benchmark.js text output (name x N ops/sec ±x% (n runs sampled))"

    def sniff(self, source: InputSource) -> bool:
        return any(_LINE.match(line.strip()) for line in sniff_text(source).splitlines())

    def parse(self, source: InputSource) -> Parsed:
        parsed = Parsed()
        for number, line in numbered_lines(source):
            match = _LINE.match(line.strip())
            if match is None:
                if _LOOSE.search(line):
                    raise line_error(
                        source, number, line, "expected 'NAME x N ops/sec ±X% (N runs sampled)'"
                    )
                continue
            try:
                hz = float(match.group("hz").replace(",", ""))
                rme = float(match.group("rme"))
                runs = int(match.group("runs").replace(",", ""))
            except ValueError as exc:
                raise line_error(source, number, line, str(exc)) from None
            parsed.results.append(
                make_result(
                    match.group("name").strip(),
                    "throughput",
                    [hz],
                    "ops/s",
                    direction=Direction.HIGHER,
                    extra={"relative_margin_of_error_percent": rme, "runs_sampled": runs},
                    reported_unit="ops/sec",
                    where=f"{source_name(source)}: line {number}",
                )
            )
        if not parsed.results:
            raise AdapterError(f"{source_name(source)}: no 'x N ops/sec' lines found")
        return parsed
