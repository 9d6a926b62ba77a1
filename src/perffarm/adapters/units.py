"""Unit normalisation: every adapter stores time in seconds, rates per second, sizes in bytes.

Results from different tools land in the same series and in the same comparison only when
they share a unit, so the conversion happens once, here, and the tool's own unit travels
along in ``Result.original_unit``. A unit this table does not know is kept as written and
its direction falls back to "lower is better" unless the caller knows better.
"""

from __future__ import annotations

from dataclasses import dataclass

from perffarm.model import Direction

SECONDS = "s"
PER_SECOND = "1/s"
BYTES_PER_SECOND = "bytes/s"
BYTES = "bytes"

_TIME_FACTORS: dict[str, float] = {
    "ps": 1e-12,
    "ns": 1e-9,
    "nanoseconds": 1e-9,
    "nanosecond": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "microseconds": 1e-6,
    "microsecond": 1e-6,
    "ms": 1e-3,
    "milliseconds": 1e-3,
    "millisecond": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hours": 3600.0,
}

# Decimal prefixes for "KB"/"MB" (what go, Criterion and most docs mean) and binary for
# "KiB"/"MiB"; an adapter whose tool means 1024 by "MB" (wrk, JMH's GC profiler) passes
# the binary spelling instead.
_SIZE_FACTORS: dict[str, float] = {
    "b": 1.0,
    "byte": 1.0,
    "bytes": 1.0,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 1024.0,
    "mib": 1024.0**2,
    "gib": 1024.0**3,
    "tib": 1024.0**4,
}

# Prefixes of counted things per second: "Kelem/s", "Mops/s".
_COUNT_PREFIXES: dict[str, float] = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}

_OPS_WORDS = ("ops", "op", "operations", "elem", "elements", "items", "req", "requests", "iter")


@dataclass(frozen=True)
class Conversion:
    """How to turn a tool's unit into perffarm's: multiply by ``factor``."""

    unit: str
    factor: float
    direction: Direction
    known: bool = True

    def apply(self, value: float) -> float:
        return value * self.factor


def _time_factor(unit: str) -> float | None:
    # Case-folding only for words: "M" is a prefix, "MS" a shouting "ms".
    return _TIME_FACTORS.get(unit) or (_TIME_FACTORS.get(unit.lower()) if len(unit) > 1 else None)


def _size_factor(unit: str) -> float | None:
    return _SIZE_FACTORS.get(unit.lower())


def _count_factor(word: str) -> float | None:
    """Factor of a counted quantity such as "ops", "Kelem", "Mreq"; None when not one."""
    for prefix, factor in _COUNT_PREFIXES.items():
        if word.startswith(prefix) and word[len(prefix) :].lower() in _OPS_WORDS:
            return factor
    return None


def conversion(unit: str) -> Conversion:
    """The conversion of ``unit``; unknown units are kept as they are (factor 1)."""
    spelled = unit.strip()
    if not spelled:
        return Conversion("", 1.0, Direction.LOWER, known=False)
    if (factor := _time_factor(spelled)) is not None:
        return Conversion(SECONDS, factor, Direction.LOWER)
    if (factor := _size_factor(spelled)) is not None:
        return Conversion(BYTES, factor, Direction.LOWER)
    if spelled.lower() in {"hz", "1/s", "/s", "per second", "ops/sec", "rps"}:
        return Conversion(PER_SECOND, 1.0, Direction.HIGHER)
    numerator, slash, denominator = spelled.partition("/")
    if slash:
        numerator, denominator = numerator.strip(), denominator.strip()
        # "ns/op", "us/iter": time per operation is a time.
        if denominator.lower() in _OPS_WORDS and (factor := _time_factor(numerator)):
            return Conversion(SECONDS, factor, Direction.LOWER)
        if denominator.lower() in _OPS_WORDS and (factor := _size_factor(numerator)):
            return Conversion(BYTES, factor, Direction.LOWER)
        if (per := _time_factor(denominator)) is not None:
            # "ops/ms", "MB/s", "Kelem/s": something per unit of time is a rate.
            if (size := _size_factor(numerator)) is not None:
                return Conversion(BYTES_PER_SECOND, size / per, Direction.HIGHER)
            count = _count_factor(numerator)
            if count is not None:
                return Conversion(PER_SECOND, count / per, Direction.HIGHER)
            return Conversion(f"{numerator}/s", 1.0 / per, Direction.HIGHER)
    if spelled in {"%", "percent"}:
        return Conversion("%", 1.0, Direction.LOWER, known=False)
    return Conversion(spelled, 1.0, Direction.LOWER, known=False)


def normalise(value: float, unit: str) -> tuple[float, str]:
    """``value`` in ``unit`` converted to perffarm's unit for it."""
    found = conversion(unit)
    return found.apply(value), found.unit
