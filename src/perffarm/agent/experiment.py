"""What a measurement writes into: results, tables, attachments, params and series.

An ``Experiment`` belongs to one measurement of one run. It only collects; the runner turns
what it holds into the run document (with statistics) when the measurement ends, so a
measurement that fails half-way still leaves what it recorded before failing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from perffarm.model import (
    Attachment,
    Direction,
    ParamValue,
    Result,
    Series,
    Table,
)


class ExperimentTable:
    """A table being filled row by row; ``add`` takes one value per field, in order."""

    def __init__(self, table: Table) -> None:
        self._table = table

    @property
    def name(self) -> str:
        return self._table.name

    @property
    def fields(self) -> list[str]:
        return list(self._table.fields)

    def add(self, *values: Any) -> None:
        if len(values) != len(self._table.fields):
            raise ValueError(
                f"table {self._table.name!r} has {len(self._table.fields)} fields "
                f"({', '.join(self._table.fields)}) but add() got {len(values)} values"
            )
        self._table.rows.append([_jsonable(value) for value in values])

    def __len__(self) -> int:
        return len(self._table.rows)


class Progress:
    """How a measurement tells the terminal how far it is; the runner draws the bar."""

    def __init__(self, on_change: Callable[[int | None, int], None] | None = None) -> None:
        self._on_change = on_change
        self.total: int | None = None
        self.done = 0

    def set_total(self, total: int | None) -> None:
        self.total = total
        self._notify()

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        self._notify()

    def _notify(self) -> None:
        if self._on_change is not None:
            self._on_change(self.total, self.done)


class Experiment:
    """The recording surface handed to each measurement."""

    def __init__(
        self,
        measurement: str,
        *,
        run_started: float | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.measurement = measurement
        self.params: dict[str, ParamValue] = {}
        self.results: list[Result] = []
        self.tables: list[Table] = []
        self.attachments: list[Attachment] = []
        self.series: list[Series] = []
        self.environment: dict[str, Any] = {}
        self.progress = progress or Progress()
        self._run_started = run_started if run_started is not None else time.time()

    # -- the API measurements use -----------------------------------------------------------

    def set_param(self, name: str, value: ParamValue, *, replace: bool = False) -> None:
        """A parameter of the whole measurement; every result it adds carries it. Setting
        one that is set already is an error unless ``replace`` says so."""
        if not isinstance(value, str | int | float | bool):
            raise TypeError(f"param {name!r} must be a string, number or boolean, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"param {name!r} must be a finite number, not {value!r}")
        if name in self.params and not replace and self.params[name] != value:
            raise ValueError(
                f"param {name!r} is set already (to {self.params[name]!r}): pass replace=True "
                "to change it"
            )
        self.params[name] = value

    def create_table(self, fields: Sequence[str], name: str | None = None) -> ExperimentTable:
        fields = [str(field) for field in fields]
        if not fields:
            raise ValueError("a table needs at least one field")
        if len(set(fields)) != len(fields):
            raise ValueError(f"table fields must be unique, got {fields}")
        table_name = name or (
            self.measurement if not self.tables else f"{self.measurement}.{len(self.tables) + 1}"
        )
        table = Table(name=table_name, fields=fields, measurement=self.measurement)
        self.tables.append(table)
        return ExperimentTable(table)

    def add_result(
        self,
        metric: str,
        samples: Iterable[float] | float,
        *,
        unit: str,
        direction: Direction | str = Direction.LOWER,
        benchmark: str | None = None,
        params: dict[str, ParamValue] | None = None,
        warmup_samples: Iterable[float] = (),
        original_unit: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Result:
        """Record one measured quantity with every repetition's value.

        ``benchmark`` defaults to the measurement's name; the measurement's params are
        merged under ``params``.
        """
        values = [float(samples)] if isinstance(samples, int | float) else list(samples)
        values = [float(value) for value in values]
        bad = [value for value in values if not math.isfinite(value)]
        if bad:
            raise ValueError(f"metric {metric!r}: samples must be finite numbers, got {bad[0]}")
        result = Result(
            benchmark=benchmark or self.measurement,
            params={**self.params, **(params or {})},
            metric=metric,
            unit=unit,
            direction=Direction(direction),
            samples=values,
            warmup_samples=[float(value) for value in warmup_samples],
            original_unit=original_unit,
            measurement=self.measurement,
            extra=extra or {},
        )
        self.results.append(result)
        return result

    def add_attachment(
        self, name: str, content: bytes | str, media_type: str | None = None
    ) -> Attachment:
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        if media_type is None:
            media_type = (
                "text/plain; charset=utf-8"
                if isinstance(content, str)
                else ("application/octet-stream")
            )
        if any(existing.name == name for existing in self.attachments):
            raise ValueError(f"an attachment named {name!r} exists already: choose another name")
        attachment = Attachment.from_bytes(
            name, data, media_type=media_type, measurement=self.measurement
        )
        self.attachments.append(attachment)
        return attachment

    def add_series(
        self, name: str, unit: str, points: Iterable[tuple[float, float]], *, absolute: bool = True
    ) -> Series:
        """A time series; with ``absolute`` the times are epoch seconds, else run-relative."""
        t: list[float] = []
        values: list[float] = []
        for when, value in points:
            t.append(round(when - self._run_started, 6) if absolute else float(when))
            values.append(float(value))
        series = Series(name=name, unit=unit, t=t, values=values, measurement=self.measurement)
        self.series.append(series)
        return series

    def add_environment(self, section: str, values: dict[str, Any]) -> None:
        """Describe something the measurement found (a server version, its settings)."""
        self.environment.setdefault(section, {}).update(values)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)
