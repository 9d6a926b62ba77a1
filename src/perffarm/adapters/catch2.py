"""Catch2's console reporter benchmark table (``BENCHMARK`` in Catch2 v2 and v3).

Each benchmark takes three rows: name, samples, iterations and estimated run time; then the
mean with its bootstrap bounds; then the standard deviation with its bounds. The console
shows no individual samples, so the mean is the one sample and everything else is kept in
``extra``. A name too long for its column continues on the following rows.
"""

from __future__ import annotations

import re

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.json_input import source_name
from perffarm.adapters.results import make_result
from perffarm.adapters.text_input import NUMBER, line_error, numbered_lines, sniff_text
from perffarm.adapters.units import conversion
from perffarm.model import Result

_VALUE = rf"({NUMBER}|inf|-?nan)\s+(ps|ns|us|µs|ms|s|m)"
_HEADER = re.compile(r"^benchmark name\s+samples\s+iterations\s+(estimated|est run time)\s*$")
_FIRST_ROW = re.compile(rf"^(?P<name>.*?)\s+(?P<samples>\d+)\s+(?P<iterations>\d+)\s+{_VALUE}\s*$")
_FIGURES_ROW = re.compile(rf"^{_VALUE}\s+{_VALUE}\s+{_VALUE}\s*$")


class Catch2Adapter(Adapter):
    name = "catch2"
    description = "Catch2 console reporter benchmark output"

    def sniff(self, source: InputSource) -> bool:
        return any(_HEADER.match(line.strip()) for line in sniff_text(source).splitlines())

    def parse(self, source: InputSource) -> Parsed:
        parsed = Parsed()
        in_table = False
        current: dict | None = None
        for number, line in numbered_lines(source):
            stripped = line.strip()
            if _HEADER.match(stripped):
                in_table = True
                continue
            if not in_table or not stripped:
                continue
            if current is None:
                first = _FIRST_ROW.match(stripped)
                if first is not None:
                    current = {
                        "name": first.group("name").strip(),
                        "samples": int(first.group("samples")),
                        "iterations": int(first.group("iterations")),
                        "estimated_s": _seconds(first.group(4), first.group(5)),
                        "line": number,
                    }
                elif not (set(stripped) <= set("-") or stripped.startswith(("mean", "std dev"))):
                    # Anything but the header's own rows ends the table (next test case).
                    in_table = False
                continue
            figures = _FIGURES_ROW.match(stripped)
            if figures is None:
                if "mean" not in current and not line.startswith(" "):
                    current["name"] += " " + stripped  # a long name wrapped onto this row
                    continue
                raise line_error(source, number, line, "expected three values with units")
            values = [_seconds(figures.group(i), figures.group(i + 1)) for i in (1, 3, 5)]
            if "mean" not in current:
                current["mean"] = values
                continue
            current["std_dev"] = values
            parsed.results.append(_result(current, source))
            current = None
        if current is not None:
            raise AdapterError(
                f"{source_name(source)}: the output ends inside benchmark {current['name']!r}"
            )
        if not parsed.results:
            raise AdapterError(f"{source_name(source)}: no Catch2 benchmark table found")
        return parsed


def _seconds(value: str, unit: str) -> float:
    return float(value) * conversion(unit).factor


def _result(row: dict, source: InputSource) -> Result:
    mean, low, high = row["mean"]
    std_dev, std_low, std_high = row["std_dev"]
    return make_result(
        row["name"],
        "mean time",
        [mean],
        "s",
        extra={
            "mean_interval_s": [low, high],
            "std_dev_s": std_dev,
            "std_dev_interval_s": [std_low, std_high],
            "samples": row["samples"],
            "iterations": row["iterations"],
            "estimated_s": row["estimated_s"],
        },
        where=f"{source_name(source)}: line {row['line']}",
    )
