"""Reading a series from a CSV or JSON file for ``perffarm changepoints``."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perffarm.console import UsageError

_COMMIT_NAMES = ("commit", "sha", "revision")
_TIME_NAMES = ("time", "timestamp", "date", "commit_time")


@dataclass
class SeriesInput:
    """The values of a series in order, with their commits and times when the file has them."""

    values: list[float]
    commits: list[str] | None = None
    times: list[str] | None = None
    column: str = "value"
    skipped: list[str] = field(default_factory=list)


def read_series(
    path: Path,
    *,
    column: str | None = None,
    commit_column: str | None = None,
    time_column: str | None = None,
) -> SeriesInput:
    """Read ``path``: JSON when it starts with ``[`` (or ends in .json), CSV otherwise."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a CSV or JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        return _from_json(path, text)
    return _from_csv(path, text, column, commit_column, time_column)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _from_csv(
    path: Path,
    text: str,
    column: str | None,
    commit_column: str | None,
    time_column: str | None,
) -> SeriesInput:
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise UsageError(f"{path} is empty: expected a header line and one row per point")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    if not body:
        raise UsageError(f"{path} has a header but no rows")
    if all(_number(name) is not None for name in header):
        raise UsageError(f"{path} has no header line: add one, e.g. 'value' (or 'commit,value')")

    def find(name: str, what: str) -> int:
        if name not in header:
            raise UsageError(f"{path} has no column {name!r} ({what}); it has: {', '.join(header)}")
        return header.index(name)

    lowered = [name.lower() for name in header]
    commit_index = find(commit_column, "--commit-column") if commit_column else None
    if commit_index is None:
        commit_index = next((lowered.index(n) for n in _COMMIT_NAMES if n in lowered), None)
    time_index = find(time_column, "--time-column") if time_column else None
    if time_index is None:
        time_index = next((lowered.index(n) for n in _TIME_NAMES if n in lowered), None)

    if column:
        value_index = find(column, "--column")
    elif "value" in lowered:
        value_index = lowered.index("value")
    else:
        numeric = [
            i
            for i in range(len(header))
            if i not in (commit_index, time_index)
            and all(_number(row[i]) is not None for row in body if i < len(row) and row[i].strip())
            and any(i < len(row) and row[i].strip() for row in body)
        ]
        if not numeric:
            raise UsageError(f"{path} has no numeric column; columns: {', '.join(header)}")
        if len(numeric) > 1:
            names = ", ".join(header[i] for i in numeric)
            raise UsageError(
                f"{path} has several numeric columns ({names}): pick one with --column"
            )
        value_index = numeric[0]

    values: list[float] = []
    commits: list[str] = []
    times: list[str] = []
    skipped: list[str] = []
    for line, row in enumerate(body, start=2):
        cell = row[value_index].strip() if value_index < len(row) else ""
        if not cell:
            skipped.append(f"line {line}: no value")
            continue
        value = _number(cell)
        if value is None:
            raise UsageError(
                f"{path} line {line}: {cell!r} in column {header[value_index]!r} is not a number"
            )
        values.append(value)
        if commit_index is not None:
            commits.append(row[commit_index].strip() if commit_index < len(row) else "")
        if time_index is not None:
            times.append(row[time_index].strip() if time_index < len(row) else "")
    series = SeriesInput(
        values=values,
        commits=commits if commit_index is not None else None,
        times=times if time_index is not None else None,
        column=header[value_index],
        skipped=skipped,
    )
    if series.times is not None:
        _sort_by_time(path, series)
    return series


def _time_key(text: str) -> float | None:
    number = _number(text)
    if number is not None:
        return number
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        # Naive times are compared among themselves only; treat them as UTC.
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _sort_by_time(path: Path, series: SeriesInput) -> None:
    """Points in time order (stable), as a series is ordered by commit time."""
    assert series.times is not None
    keys = [_time_key(t) for t in series.times]
    for text, key in zip(series.times, keys, strict=True):
        if key is None:
            raise UsageError(f"{path}: time {text!r} is neither a number nor an ISO 8601 date-time")
    order = sorted(range(len(keys)), key=lambda i: keys[i])  # type: ignore[arg-type, return-value]
    series.values = [series.values[i] for i in order]
    series.times = [series.times[i] for i in order]
    if series.commits is not None:
        series.commits = [series.commits[i] for i in order]


def _from_json(path: Path, text: str) -> SeriesInput:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a JSON list of numbers or of objects with a 'value'")
    values: list[float] = []
    commits: list[str] = []
    times: list[str] = []
    has_commit = has_time = False
    for position, item in enumerate(data):
        if isinstance(item, dict):
            raw = item.get("value")
            commit = item.get("commit")
            moment = item.get("time")
            has_commit |= commit is not None
            has_time |= moment is not None
            commits.append("" if commit is None else str(commit))
            times.append("" if moment is None else str(moment))
        else:
            raw = item
            commits.append("")
            times.append("")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise UsageError(f"{path} item {position}: {raw!r} is not a number")
        values.append(float(raw))
    series = SeriesInput(
        values=values,
        commits=commits if has_commit else None,
        times=times if has_time else None,
    )
    if series.times is not None:
        _sort_by_time(path, series)
    return series
