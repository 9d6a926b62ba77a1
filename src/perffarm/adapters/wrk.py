"""wrk's text output, with or without ``--latency``.

wrk prints, per run: thread statistics (latency and requests per second per thread:
average, stdev, max), the latency distribution with ``--latency``, totals, socket errors,
non-2xx responses and the overall rates. Each figure is one result with one sample; the
URL is the benchmark and threads/connections/duration are params. Several runs printed one
after the other (a shell loop over URLs) give one set of results each. wrk scales counts
by 1000 (``k``, ``M``), byte sizes by 1024 (``KB``, ``MB``), and prints times with their
own unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.json_input import source_name
from perffarm.adapters.results import make_result
from perffarm.adapters.text_input import NUMBER, line_error, numbered_lines, sniff_text
from perffarm.model import Direction, ParamValue

_RUNNING = re.compile(r"^Running (\S+) test @ (\S+)")
_THREADS = re.compile(r"^(\d+) threads and (\d+) connections")
_THREAD_STATS = re.compile(r"^(Latency|Req/Sec)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)%$")
_PERCENTILE = re.compile(r"^(\d+(?:\.\d+)?)%\s+(\S+)$")
_TOTALS = re.compile(r"^(\d+) requests in (\S+), (\S+) read$")
_SOCKET_ERRORS = re.compile(
    r"^Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)$"
)
_NON_2XX = re.compile(r"^Non-2xx or 3xx responses: (\d+)$")
_RATE = re.compile(r"^(Requests|Transfer)/sec:\s+(\S+)$")
# A line that looks like a figure but did not match above is damaged output.
_LOOKS_LIKE_FIGURES = re.compile(r"^(Latency|Req/Sec)\b|^\d+(\.\d+)?%")
_NUMBER_WITH_UNIT = re.compile(rf"^({NUMBER})([A-Za-z]*)$")
_COUNT_SCALE = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_BYTE_UNITS = {"B": "B", "KB": "KiB", "MB": "MiB", "GB": "GiB", "TB": "TiB"}
_TIME_UNITS = {"us", "ms", "s", "m", "h"}


class _Figure(NamedTuple):
    metric: str
    value: float
    unit: str  # as units.conversion reads it
    direction: Direction
    reported_unit: str | None = None  # as wrk printed it, when that differs


@dataclass
class _Run:
    url: str
    params: dict[str, ParamValue]
    figures: list[_Figure] = field(default_factory=list)
    in_distribution: bool = False


class WrkAdapter(Adapter):
    name = "wrk"
    description = "wrk text output (with or without --latency)"

    def sniff(self, source: InputSource) -> bool:
        text = sniff_text(source)
        return bool(re.search(r"^Running \S+ test @ ", text, re.M)) and "Requests/sec:" in text

    def parse(self, source: InputSource) -> Parsed:
        runs: list[_Run] = []
        for number, line in numbered_lines(source):
            stripped = line.strip()
            if not stripped:
                continue
            if match := _RUNNING.match(stripped):
                runs.append(_Run(url=match.group(2), params={"duration": match.group(1)}))
                continue
            if not runs:
                continue  # whatever a wrapper script printed before wrk started
            try:
                _read_line(stripped, runs[-1])
            except ValueError as exc:
                raise line_error(source, number, stripped, str(exc)) from None
        if not runs:
            raise AdapterError(f"{source_name(source)}: no 'Running ... test @ URL' line")
        parsed = Parsed()
        for run in runs:
            if not run.figures:
                raise AdapterError(f"{source_name(source)}: no figures for {run.url}")
            for figure in run.figures:
                parsed.results.append(
                    make_result(
                        run.url,
                        figure.metric,
                        [figure.value],
                        figure.unit,
                        params=run.params,
                        direction=figure.direction,
                        reported_unit=figure.reported_unit,
                    )
                )
        return parsed


def _read_line(line: str, run: _Run) -> None:
    figures = run.figures
    if match := _THREADS.match(line):
        run.params["threads"] = int(match.group(1))
        run.params["connections"] = int(match.group(2))
    elif line.startswith("Latency Distribution"):
        run.in_distribution = True
    elif match := _THREAD_STATS.match(line):
        kind, average, stdev, maximum, within = match.groups()
        for label, text in (("mean", average), ("stdev", stdev), ("max", maximum)):
            if kind == "Latency":
                figures.append(_Figure(f"latency {label}", *_time(text), Direction.LOWER))
            else:
                # Lower spread is better; more requests are better.
                direction = Direction.LOWER if label == "stdev" else Direction.HIGHER
                figures.append(
                    _Figure(f"requests/s per thread {label}", _count(text), "1/s", direction)
                )
        figures.append(
            _Figure(f"{kind.lower()} within 1 stdev", float(within), "%", Direction.HIGHER)
        )
    elif run.in_distribution and (match := _PERCENTILE.match(line)):
        figures.append(
            _Figure(f"latency p{match.group(1)}", *_time(match.group(2)), Direction.LOWER)
        )
    elif match := _TOTALS.match(line):
        run.in_distribution = False
        figures.append(_Figure("requests", float(match.group(1)), "requests", Direction.HIGHER))
        figures.append(_Figure("duration", *_time(match.group(2)), Direction.LOWER))
        amount, unit, reported = _bytes(match.group(3))
        figures.append(_Figure("bytes read", amount, unit, Direction.HIGHER, reported))
    elif match := _SOCKET_ERRORS.match(line):
        for kind, count in zip(
            ("connect", "read", "write", "timeout"), match.groups(), strict=True
        ):
            figures.append(
                _Figure(f"socket errors {kind}", float(count), "errors", Direction.LOWER)
            )
    elif match := _NON_2XX.match(line):
        figures.append(
            _Figure("non-2xx/3xx responses", float(match.group(1)), "responses", Direction.LOWER)
        )
    elif match := _RATE.match(line):
        if match.group(1) == "Requests":
            figures.append(_Figure("requests/s", _count(match.group(2)), "1/s", Direction.HIGHER))
        else:
            amount, unit, reported = _bytes(match.group(2))
            figures.append(
                _Figure("transfer/s", amount, f"{unit}/s", Direction.HIGHER, f"{reported}/s")
            )
    elif _LOOKS_LIKE_FIGURES.match(line):
        raise ValueError("could not read the figures on this line")


def _split(text: str) -> tuple[float, str]:
    match = _NUMBER_WITH_UNIT.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a number with a unit")
    return float(match.group(1)), match.group(2)


def _time(text: str) -> tuple[float, str]:
    value, unit = _split(text)
    if unit not in _TIME_UNITS:
        raise ValueError(f"{text!r} is not a time")
    return value, unit


def _count(text: str) -> float:
    value, suffix = _split(text)
    if suffix not in _COUNT_SCALE:
        raise ValueError(f"{text!r} is not a count")
    return value * _COUNT_SCALE[suffix]


def _bytes(text: str) -> tuple[float, str, str]:
    """(value, unit spelled for the unit table, unit as wrk printed it)."""
    value, unit = _split(text)
    if unit not in _BYTE_UNITS:
        raise ValueError(f"{text!r} is not a byte size")
    return value, _BYTE_UNITS[unit], unit
