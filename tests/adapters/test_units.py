"""Unit normalisation: the unit every adapter stores and which way is better."""

from __future__ import annotations

import pytest

from perffarm.adapters.results import make_result
from perffarm.adapters.units import conversion, normalise
from perffarm.model import Direction


@pytest.mark.parametrize(
    ("unit", "value", "expected", "normal_unit", "direction"),
    [
        ("ns", 1500.0, 1.5e-6, "s", Direction.LOWER),
        ("µs", 2.0, 2e-6, "s", Direction.LOWER),
        ("us", 2.0, 2e-6, "s", Direction.LOWER),
        ("ms", 250.0, 0.25, "s", Direction.LOWER),
        ("seconds", 3.0, 3.0, "s", Direction.LOWER),
        ("min", 2.0, 120.0, "s", Direction.LOWER),
        ("ns/op", 40.0, 4e-8, "s", Direction.LOWER),
        ("us/iter", 3.0, 3e-6, "s", Direction.LOWER),
        ("ops/s", 10.0, 10.0, "1/s", Direction.HIGHER),
        ("ops/ms", 10.0, 10_000.0, "1/s", Direction.HIGHER),
        ("ops/us", 2.0, 2e6, "1/s", Direction.HIGHER),
        ("ops/sec", 5.0, 5.0, "1/s", Direction.HIGHER),
        ("Kelem/s", 3.0, 3000.0, "1/s", Direction.HIGHER),
        ("Melem/s", 1.5, 1.5e6, "1/s", Direction.HIGHER),
        ("req/s", 7.0, 7.0, "1/s", Direction.HIGHER),
        ("Hz", 50.0, 50.0, "1/s", Direction.HIGHER),
        ("MB/s", 2.0, 2e6, "bytes/s", Direction.HIGHER),
        ("MiB/s", 2.0, 2 * 1024.0**2, "bytes/s", Direction.HIGHER),
        ("GiB/s", 1.0, 1024.0**3, "bytes/s", Direction.HIGHER),
        ("B", 10.0, 10.0, "bytes", Direction.LOWER),
        ("KB", 2.0, 2000.0, "bytes", Direction.LOWER),
        ("KiB", 2.0, 2048.0, "bytes", Direction.LOWER),
        ("B/op", 64.0, 64.0, "bytes", Direction.LOWER),
    ],
)
def test_known_units_are_normalised(
    unit: str, value: float, expected: float, normal_unit: str, direction: Direction
) -> None:
    found = conversion(unit)
    assert found.apply(value) == pytest.approx(expected, rel=1e-12)
    assert (found.unit, found.direction, found.known) == (normal_unit, direction, True)
    assert normalise(value, unit) == (pytest.approx(expected, rel=1e-12), normal_unit)


@pytest.mark.parametrize("unit", ["allocs/op", "widgets", "counts", "", "%"])
def test_unknown_units_are_kept_as_written(unit: str) -> None:
    found = conversion(unit)
    assert (found.unit, found.factor, found.known) == (unit, 1.0, False)


def test_a_single_capital_m_is_not_read_as_minutes() -> None:
    assert conversion("M").unit == "M"


def test_make_result_keeps_the_tool_unit_and_drops_non_finite_samples() -> None:
    result = make_result("b", "time", [1.0, float("nan"), 2.0, float("inf")], "ms")
    assert result.samples == [0.001, 0.002]
    assert (result.unit, result.original_unit) == ("s", "ms")
    assert result.extra["dropped_samples"] == ["nan", "inf"]


def test_make_result_does_not_repeat_an_unchanged_unit() -> None:
    assert make_result("b", "time", [1.0], "s").original_unit is None


def test_make_result_turns_an_invalid_result_into_an_adapter_error() -> None:
    from perffarm.adapters.base import AdapterError

    with pytest.raises(AdapterError, match="line 3: result '' 'time' is not valid"):
        make_result("", "time", [1.0], "s", where="line 3")
