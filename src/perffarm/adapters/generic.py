"""perffarm's own generic formats, for tools no adapter knows (see docs/adapters.md).

JSON::

    {"results": [{"benchmark": "parse", "metric": "time", "unit": "ms",
                  "samples": [1.2, 1.3], "params": {"size": 10}, "direction": "lower"}]}

CSV: a header with ``benchmark``, ``metric``, ``unit`` and ``value`` columns; every other
column is a parameter. Rows that agree on everything but ``value`` are samples of one result.
"""

from __future__ import annotations

import csv
import io
import re

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek, scalar_members, source_name
from perffarm.adapters.results import make_result, number_or_text, param_value
from perffarm.adapters.text_input import sniff_text
from perffarm.model import Direction, ParamValue, Result

CSV_COLUMNS = ("benchmark", "metric", "unit", "value")
_DIRECTIONS = {"lower": Direction.LOWER, "higher": Direction.HIGHER}


class GenericJsonAdapter(Adapter):
    name = "generic-json"
    description = (
        'perffarm\'s generic JSON: {"results": [{"benchmark", "metric", "unit", "samples"}]}'
    )

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        if not isinstance(document, dict) or not isinstance(document.get("results"), list):
            return False
        first = next(iter(document["results"]), None)
        return isinstance(first, dict) and "benchmark" in first and "samples" in first

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        if (environment := root.opt("environment")) is not None:
            parsed.environment = scalar_members(environment)
        for entry in root.get("results").elements():
            parsed.results.append(self._result(entry))
        return parsed

    def _result(self, entry: Node) -> Result:
        direction = entry.opt_text("direction")
        if direction is not None and direction not in _DIRECTIONS:
            raise entry.get("direction").error(f"expected 'lower' or 'higher', found {direction!r}")
        params = {key: _param(node) for key, node in (entry.opt("params") or _EMPTY).items()}
        extra_node = entry.opt("extra")
        return make_result(
            entry.get("benchmark").text(),
            entry.get("metric").text(),
            entry.get("samples").numbers(),
            entry.get("unit").text(),
            params=params,
            direction=_DIRECTIONS.get(direction or ""),
            warmup_samples=(entry.opt("warmup_samples") or _EMPTY_LIST).numbers(),
            extra=extra_node.object() if extra_node is not None else None,
            where=f"{entry.file}: {entry.path}",
        )


_EMPTY = Node({}, "$")
_EMPTY_LIST = Node([], "$")


def _param(node: Node) -> ParamValue:
    if isinstance(node.value, dict | list):
        raise node.error("a parameter must be a string, number or boolean")
    return param_value(node.value)


class GenericCsvAdapter(Adapter):
    name = "generic-csv"
    description = "perffarm's generic CSV: benchmark, metric, unit, value (+ parameter columns)"

    def sniff(self, source: InputSource) -> bool:
        first_line = sniff_text(source, 4096).lstrip("\ufeff").partition("\n")[0]
        header = [column.strip().strip('"').lower() for column in re.split(r"[,;\t]", first_line)]
        return all(column in header for column in CSV_COLUMNS)

    def parse(self, source: InputSource) -> Parsed:
        if source.is_directory:
            raise AdapterError(f"{source_name(source)} is a directory, not a CSV file")
        text = source.text().lstrip("\ufeff")
        try:
            dialect = csv.Sniffer().sniff(text.partition("\n")[0], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        rows = csv.reader(io.StringIO(text), dialect)
        label = source_name(source)
        try:
            header = [column.strip() for column in next(rows)]
        except (StopIteration, csv.Error):
            raise AdapterError(f"{label}: line 1: expected a header row") from None
        lowered = [column.lower() for column in header]
        missing = [column for column in CSV_COLUMNS if column not in lowered]
        if missing:
            raise AdapterError(f"{label}: line 1: missing column(s) {', '.join(missing)}")
        index = {column: lowered.index(column) for column in CSV_COLUMNS}
        direction_index = lowered.index("direction") if "direction" in lowered else None
        reserved = set(index.values()) | {direction_index}
        param_columns = [(i, header[i]) for i in range(len(header)) if i not in reserved]
        grouped: dict[tuple, list[float]] = {}
        directions: dict[tuple, str] = {}
        try:
            for row in rows:
                line = rows.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise AdapterError(
                        f"{label}: line {line}: {len(row)} values for {len(header)} columns"
                    )
                value_text = row[index["value"]].strip()
                try:
                    value = float(value_text)
                except ValueError:
                    raise AdapterError(
                        f"{label}: line {line}: value {value_text!r} is not a number"
                    ) from None
                params = tuple(
                    (name, number_or_text(row[i].strip()))
                    for i, name in param_columns
                    if row[i].strip()
                )
                key = (
                    row[index["benchmark"]].strip(),
                    row[index["metric"]].strip(),
                    row[index["unit"]].strip(),
                    params,
                )
                grouped.setdefault(key, []).append(value)
                if direction_index is not None and row[direction_index].strip():
                    written = row[direction_index].strip().lower()
                    if written not in _DIRECTIONS:
                        raise AdapterError(
                            f"{label}: line {line}: direction must be lower or higher, "
                            f"found {written!r}"
                        )
                    directions[key] = written
        except csv.Error as exc:
            raise AdapterError(f"{label}: line {rows.line_num}: {exc}") from None
        parsed = Parsed()
        for key, values in grouped.items():
            benchmark, metric, unit, params = key
            parsed.results.append(
                make_result(
                    benchmark,
                    metric,
                    values,
                    unit,
                    params=dict(params),
                    direction=_DIRECTIONS.get(directions.get(key, "")),
                    where=label,
                )
            )
        return parsed
