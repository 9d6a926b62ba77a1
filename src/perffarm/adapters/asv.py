"""airspeed velocity (asv) results: ``results/<machine>/<commit>-<env>.json``.

A result file (format version 2) holds one commit's results as rows of ``result_columns``.
``benchmarks.json`` (two levels up, in ``results/``) gives each benchmark's type, unit and
parameter names; ``machine.json`` beside the file describes the machine. A parameterised
benchmark's values run over the Cartesian product of its parameter values, one result per
combination. ``null`` is a failed benchmark, NaN a skipped one: neither is a sample; both
are listed in ``extra``. Samples come from the ``samples`` column (``--record-samples``),
else the reported value is the one sample.

A directory is read when it holds exactly one result file; a results directory with many
commits is history, which is imported one file at a time.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
from pathlib import Path
from typing import Any

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, scalar_members
from perffarm.adapters.results import finite_or_none, make_result, param_value
from perffarm.model import ParamValue, Result, Source

# asv's benchmark types (benchmarks.json "type", else the name's prefix), as metric and unit.
_TYPES = {
    "time": ("time", "seconds"),
    "memory": ("memory", "bytes"),
    "mem": ("memory", "bytes"),
    "peakmemory": ("peak memory", "bytes"),
    "peakmem": ("peak memory", "bytes"),
    "track": ("value", ""),
}
# A corrupted params column could describe billions of combinations; asv never runs that many.
_MAX_COMBINATIONS = 100_000
_STATS_COLUMNS = (
    "stats_ci_99_a", "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat",
)  # fmt: skip


class AsvAdapter(Adapter):
    name = "asv"
    description = "asv results: one results/<machine>/<commit>-<env>.json or its directory"

    def sniff(self, source: InputSource) -> bool:
        if source.is_directory:
            return bool(_result_files(source.path))
        document = peek(source)
        return (
            isinstance(document, dict)
            and "commit_hash" in document
            and isinstance(document.get("results"), dict)
        )

    def parse(self, source: InputSource) -> Parsed:
        if source.is_directory:
            files = _result_files(source.path)
            if len(files) != 1:
                raise AdapterError(
                    f"{source.path} holds {len(files)} asv result files; give one of them "
                    "(each file is one commit, so one run)"
                )
            source = InputSource.from_path(files[0])
        root = load(source, self.name)
        version = root.opt("version")
        if version is not None and version.value != 2:
            raise version.error(f"asv result format {version.value} is not supported (2 is)")
        definitions, machine = _siblings(source.path)
        parsed = Parsed()
        parsed.environment = {"machine": machine} if machine else {}
        if (params := root.opt("params")) is not None:
            parsed.environment["params"] = scalar_members(params)
        for key in ("env_name", "python", "requirements", "env_vars", "date"):
            if (node := root.opt(key)) is not None:
                parsed.environment[key] = node.value
        parsed.source = Source(commit=root.get("commit_hash").text())
        columns = [column.text() for column in root.get("result_columns").elements()]
        for name, row in root.get("results").items():
            parsed.results.extend(_results(name, row, columns, definitions.get(name, {})))
        return parsed


def _result_files(directory: Path | None) -> list[Path]:
    if directory is None:
        return []
    candidates = list(directory.glob("*.json")) + list(directory.glob("*/*.json"))
    files = []
    for path in sorted(candidates):
        if path.name in {"benchmarks.json", "machine.json"} or path.stat().st_size > 200_000_000:
            continue
        document = peek(InputSource.from_path(path))
        if isinstance(document, dict) and "commit_hash" in document:
            files.append(path)
    return files


def _siblings(path: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """benchmarks.json (the results directory) and machine.json (the machine's directory)."""
    if path is None:
        return {}, {}
    definitions: dict[str, Any] = {}
    for candidate in (path.parent.parent / "benchmarks.json", path.parent / "benchmarks.json"):
        if candidate.is_file():
            document = _json_file(candidate)
            definitions = {k: v for k, v in document.items() if isinstance(v, dict)}
            break
    machine_file = path.parent / "machine.json"
    machine = _json_file(machine_file) if machine_file.is_file() else {}
    return definitions, machine


def _json_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise AdapterError(f"{path}: expected a JSON object")
    return document


def _column(row: Node, columns: list[str], name: str) -> Node | None:
    if name not in columns:
        return None
    index = columns.index(name)
    values = row.list()
    if index >= len(values) or values[index] is None:
        return None
    return row.at(index)


def _results(name: str, row: Node, columns: list[str], definition: dict) -> list[Result]:
    kind = definition.get("type")
    if not isinstance(kind, str):
        # Without benchmarks.json the name's prefix says the type (time_, mem_, track_).
        kind = name.rpartition(".")[2].split("_")[0]
    metric, default_unit = _TYPES.get(kind, ("value", ""))
    unit = str(definition.get("unit") or default_unit)
    value_node = _column(row, columns, "result")
    params_node = _column(row, columns, "params")
    param_lists = (
        [[_param(v) for v in axis.list()] for axis in params_node.elements()] if params_node else []
    )
    names = definition.get("param_names")
    if not (
        isinstance(names, list)
        and len(names) == len(param_lists)
        and all(isinstance(n, str) for n in names)
    ):
        names = [f"param{i + 1}" for i in range(len(param_lists))]
    expected = math.prod(len(axis) for axis in param_lists)
    where = f"{row.file}: {row.path}"
    if value_node is not None and len(value_node.list()) != expected:
        raise value_node.error(
            f"{len(value_node.list())} values for {expected} parameter combinations"
        )
    if expected > _MAX_COMBINATIONS:
        raise row.error(f"{expected} parameter combinations is more than asv would run")
    combinations = list(itertools.product(*param_lists))
    if value_node is None:
        # The whole benchmark failed: nothing measured, but say so.
        return [
            make_result(
                name,
                metric,
                [],
                unit,
                params=dict(zip(names, combo, strict=True)),
                extra={"failed": True},
                where=where,
            )
            for combo in combinations
        ]
    values = [None if v.is_null() else v.number() for v in value_node.elements()]
    samples_node = _column(row, columns, "samples")
    sample_lists = list(samples_node.elements()) if samples_node is not None else []
    stats = {column: _column(row, columns, column) for column in _STATS_COLUMNS}
    results = []
    for index, (combo, value) in enumerate(zip(combinations, values, strict=True)):
        params: dict[str, ParamValue] = dict(zip(names, combo, strict=True))
        extra: dict[str, Any] = {}
        for column, node in stats.items():
            if node is not None and index < len(node.list()):
                item = node.at(index)
                extra[column] = None if item.is_null() else finite_or_none(item.number())
        samples: list[float] = []
        if value is None:
            extra["failed"] = True
        elif math.isnan(value):
            extra["skipped"] = True
        elif index < len(sample_lists) and not sample_lists[index].is_null():
            samples = sample_lists[index].numbers()
        else:
            samples = [value]
        if value is not None and not math.isnan(value):
            extra["reported"] = finite_or_none(value)
        results.append(
            make_result(name, metric, samples, unit, params=params, extra=extra, where=where)
        )
    return results


def _param(value: Any) -> ParamValue:
    """asv writes parameter values as Python reprs ("'fast'", "10", "None")."""
    if not isinstance(value, str):
        return param_value(value)
    try:
        return param_value(ast.literal_eval(value))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value
