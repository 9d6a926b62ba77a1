"""Building ``Result`` objects the same way in every adapter.

Each adapter hands over the tool's numbers in the tool's unit; this module converts them,
keeps the original unit, drops non-finite samples (the model refuses them) while recording
what was dropped, and turns a model validation error into an ``AdapterError`` so that an
odd input never escapes as anything but the adapter's own error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from perffarm.adapters.base import AdapterError
from perffarm.adapters.units import conversion
from perffarm.model import Direction, ParamValue, Result


def param_value(value: Any) -> ParamValue:
    """A parameter as a scalar; lists, dicts and None become their text."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None:
        return "None"
    return str(value)


def params_of(raw: Mapping[str, Any] | None) -> dict[str, ParamValue]:
    return {str(key): param_value(value) for key, value in (raw or {}).items()}


def number_or_text(text: str) -> ParamValue:
    """A parameter written as text ("10", "0.5", "abc") as the number it spells, if any."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _finite_only(values: Iterable[float]) -> tuple[list[float], list[str]]:
    kept: list[float] = []
    dropped: list[str] = []
    for value in values:
        if math.isfinite(value):
            kept.append(float(value))
        else:
            dropped.append(str(value))
    return kept, dropped


def make_result(
    benchmark: str,
    metric: str,
    samples: Iterable[float],
    unit: str,
    *,
    params: Mapping[str, ParamValue] | None = None,
    direction: Direction | str | None = None,
    warmup_samples: Iterable[float] = (),
    extra: Mapping[str, Any] | None = None,
    reported_unit: str | None = None,
    where: str = "",
) -> Result:
    """A result in normalised units.

    ``unit`` is what the numbers are in, spelled so that ``units.conversion`` understands
    it; ``reported_unit`` is how the tool wrote it when that differs (wrk's "MB" means
    MiB). ``where`` names the input position for the error message.
    """
    found = conversion(unit)
    kept, dropped = _finite_only(found.apply(value) for value in samples)
    kept_warmup, dropped_warmup = _finite_only(found.apply(value) for value in warmup_samples)
    all_extra = dict(extra or {})
    if dropped:
        all_extra["dropped_samples"] = dropped
    if dropped_warmup:
        all_extra["dropped_warmup_samples"] = dropped_warmup
    original = reported_unit if reported_unit is not None else unit
    try:
        return Result(
            benchmark=benchmark,
            params=dict(params or {}),
            metric=metric,
            unit=found.unit,
            direction=Direction(direction) if direction is not None else found.direction,
            samples=kept,
            warmup_samples=kept_warmup,
            original_unit=original if original != found.unit else None,
            extra=all_extra,
        )
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        place = f"{where}: " if where else ""
        raise AdapterError(
            f"{place}result {benchmark!r} {metric!r} is not valid: {first}"
        ) from None


def finite_or_none(value: float | None) -> float | None:
    """A summary figure for ``extra``: JSON has no NaN, so non-finite becomes None."""
    if value is None or not math.isfinite(value):
        return None
    return value
