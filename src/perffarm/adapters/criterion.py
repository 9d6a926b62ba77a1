"""Criterion.rs: its ``target/criterion`` directory, one benchmark's JSON files, or its console.

In the directory each benchmark has ``new/benchmark.json`` (its id and throughput),
``new/sample.json`` (``iters`` and total ``times`` in ns per sample) and
``new/estimates.json`` (bootstrap estimates). A sample's time per iteration,
``times[i] / iters[i]``, is one sample; with a declared throughput the same samples give
elements or bytes per second. The estimates are kept in ``extra``. A single
``sample.json``/``estimates.json`` reads its sibling files when it has a path.

The console output (``cargo bench``) only has the estimate with its confidence interval:
the point estimate is the one sample and the bounds go into ``extra``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, source_name
from perffarm.adapters.results import finite_or_none, make_result, number_or_text
from perffarm.adapters.text_input import NUMBER, line_error, numbered_lines, sniff_text
from perffarm.model import Direction, ParamValue, Result

_ESTIMATES = ("mean", "median", "median_abs_dev", "slope", "std_dev")
_CONSOLE_FIGURES = re.compile(
    r"^(?:(?P<name>.*?)\s+)?(?P<kind>time|thrpt):\s+\[(?P<values>[^\]]*)\]\s*$"
)
_CONSOLE_VALUE = re.compile(rf"^({NUMBER})\s+(\S+)$")
# target/criterion/<group>/<function>/<value>/new is five levels below target.
_MAX_DEPTH = 8
_MAX_DIRECTORIES = 20_000


class CriterionAdapter(Adapter):
    name = "criterion"
    description = "Criterion.rs: target/criterion directory, sample/estimates JSON, console output"

    def sniff(self, source: InputSource) -> bool:
        if source.is_directory:
            return bool(_benchmark_directories(source.path))
        document = peek(source)
        if isinstance(document, dict):
            return _json_kind(document) is not None
        text = sniff_text(source)
        return any(_CONSOLE_FIGURES.match(line) and "time:" in line for line in text.splitlines())

    def parse(self, source: InputSource) -> Parsed:
        if source.is_directory:
            assert source.path is not None  # a directory has a path
            directories = _benchmark_directories(source.path)
            if not directories:
                raise AdapterError(
                    f"{source.path}: no Criterion benchmark (*/new/sample.json) found"
                )
            parsed = Parsed()
            for directory in directories:
                parsed.results.extend(_directory_results(directory, source.path))
            return parsed
        if peek(source) is not None or source.data.lstrip()[:1] in (b"{", b"["):
            return Parsed(results=_file_results(source))
        return _console(source)


def _benchmark_directories(root: Path | None) -> list[Path]:
    """Every ``.../new`` directory holding a sample.json, at most ``_MAX_DEPTH`` down.

    The walk is bounded because detection asks every adapter about any directory a user
    passes, which may be a whole repository.
    """
    if root is None:
        return []
    found = []
    for visited, (directory, subdirectories, files) in enumerate(os.walk(root), start=1):
        if visited > _MAX_DIRECTORIES:
            break
        if len(Path(directory).relative_to(root).parts) >= _MAX_DEPTH:
            subdirectories.clear()
        # Hidden directories (.git, .venv) are never Criterion's.
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
        if Path(directory).name == "new" and "sample.json" in files:
            found.append(Path(directory))
    return sorted(found)


def _json_kind(document: dict) -> str | None:
    if "iters" in document and "times" in document:
        return "sample"
    mean = document.get("mean")
    if isinstance(mean, dict) and "point_estimate" in mean:
        return "estimates"
    if "group_id" in document and "full_id" in document:
        return "benchmark"
    return None


def _read_json(path: Path) -> Node | None:
    if not path.is_file():
        return None
    return load(InputSource.from_path(path), "Criterion")


def _directory_results(directory: Path, root: Path) -> list[Result]:
    """Results of one ``.../new`` directory."""
    name_node = _read_json(directory / "benchmark.json")
    fallback = "/".join(directory.relative_to(root).parts[:-1]) or directory.parent.name
    return _results(
        name_node,
        _read_json(directory / "sample.json"),
        _read_json(directory / "estimates.json"),
        fallback,
    )


def _file_results(source: InputSource) -> list[Result]:
    node = load(source, "Criterion")
    kind = _json_kind(node.object())
    if kind is None:
        raise node.error("expected Criterion's sample.json, estimates.json or benchmark.json")
    nodes: dict[str, Node | None] = {"sample": None, "estimates": None, "benchmark": None}
    nodes[kind] = node
    fallback = "benchmark"
    if source.path is not None:
        directory = source.path.parent
        for sibling in nodes:
            if nodes[sibling] is None:
                nodes[sibling] = _read_json(directory / f"{sibling}.json")
        fallback = directory.parent.name if directory.name == "new" else directory.name
    if nodes["sample"] is None and nodes["estimates"] is None:
        raise node.error("benchmark.json alone has no measurements; give the directory")
    return _results(nodes["benchmark"], nodes["sample"], nodes["estimates"], fallback)


def _results(
    benchmark: Node | None, sample: Node | None, estimates: Node | None, fallback: str
) -> list[Result]:
    name = fallback
    params: dict[str, ParamValue] = {}
    throughput: tuple[str, float] | None = None
    if benchmark is not None:
        group = benchmark.opt_text("group_id")
        function = benchmark.opt_text("function_id")
        name = "/".join(part for part in (group, function) if part) or fallback
        if (value := benchmark.opt_text("value_str")) is not None:
            params["input"] = number_or_text(value)
        if (declared := benchmark.opt("throughput")) is not None:
            for kind, declared_amount in declared.items():
                throughput = (kind, declared_amount.number())
    extra: dict = {}
    if estimates is not None:
        extra["estimates_s"] = {
            key: _estimate(estimates.get(key)) for key in _ESTIMATES if estimates.opt(key)
        }
    if sample is not None:
        iterations = sample.get("iters").numbers()
        times = sample.get("times").numbers()
        if len(iterations) != len(times):
            raise sample.error(f"{len(iterations)} iters but {len(times)} times")
        per_iteration = [
            total / count if count else float("nan")
            for total, count in zip(times, iterations, strict=True)
        ]
        if (mode := sample.opt_text("sampling_mode")) is not None:
            extra["sampling_mode"] = mode
        where = f"{sample.file}: {sample.path}"
    elif estimates is not None:
        per_iteration = [estimates.get("mean").get("point_estimate").number()]
        extra["samples_from"] = "mean estimate (no sample.json)"
        where = f"{estimates.file}: {estimates.path}"
    else:
        raise AdapterError(f"{name}: neither sample.json nor estimates.json")
    results = [
        make_result(name, "time", per_iteration, "ns", params=params, extra=extra, where=where)
    ]
    if throughput is not None:
        kind, amount = throughput
        # per_iteration is in ns; the rate is per second.
        rates = [amount * 1e9 / value if value else float("nan") for value in per_iteration]
        results.append(
            make_result(
                name,
                "throughput",
                rates,
                "bytes/s" if kind.lower().startswith("bytes") else "1/s",
                params=params,
                direction=Direction.HIGHER,
                extra={"throughput_per_iteration": {kind: amount}},
                where=where,
            )
        )
    return results


def _estimate(node: Node) -> dict:
    interval = node.get("confidence_interval")
    return {
        "point": finite_or_none(node.get("point_estimate").number() * 1e-9),
        "lower": finite_or_none(interval.get("lower_bound").number() * 1e-9),
        "upper": finite_or_none(interval.get("upper_bound").number() * 1e-9),
        "level": finite_or_none(interval.get("confidence_level").number()),
        "standard_error": finite_or_none(node.get("standard_error").number() * 1e-9),
    }


def _console(source: InputSource) -> Parsed:
    parsed = Parsed()
    pending_name: str | None = None
    current: str | None = None
    for number, line in numbered_lines(source):
        if not line.strip():
            continue
        match = _CONSOLE_FIGURES.match(line.strip()) if line.startswith(" ") else None
        match = match or _CONSOLE_FIGURES.match(line)
        if match is None:
            if not line.startswith(" ") and not _is_chatter(line):
                pending_name = line.strip()
            continue
        if "%" in match.group("values"):
            continue  # the "change:" block compares with the previous run; not a measurement
        name = (match.group("name") or "").strip() or (
            current if match.group("kind") == "thrpt" else pending_name
        )
        if not name:
            raise line_error(source, number, line, "figures without a benchmark name")
        current = name
        pending_name = None
        values = re.split(r"\s+(?=-?[0-9])", match.group("values").strip())
        if len(values) != 3:
            raise line_error(source, number, line, "expected three values: [low estimate high]")
        figures = []
        for text in values:
            figure = _CONSOLE_VALUE.match(text.strip())
            if figure is None:
                raise line_error(source, number, line, f"{text!r} is not a value with a unit")
            figures.append((float(figure.group(1)), figure.group(2)))
        (low, _), (estimate, unit), (high, _) = figures
        kind = match.group("kind")
        result = make_result(
            name,
            "time" if kind == "time" else "throughput",
            [estimate],
            unit,
            direction=Direction.LOWER if kind == "time" else Direction.HIGHER,
            extra={"interval": [low, high], "interval_unit": unit},
            where=f"{source_name(source)}: line {number}",
        )
        parsed.results.append(result)
    if not parsed.results:
        raise AdapterError(f"{source_name(source)}: no 'time: [...]' lines found")
    return parsed


def _is_chatter(line: str) -> bool:
    return line.startswith(
        ("Benchmarking ", "Found ", "Gnuplot ", "Running ", "Compiling ", "Finished ", "warning")
    ) or line.strip().startswith(("change:", "No change", "Performance has", "Change within"))
