"""What a comparison of two sets of samples says, and the rule that turns its figures into a
verdict.

A verdict needs two things at once (documented in docs/analysis.md):

- **significance**: the Mann-Whitney U test (no assumption of normal timings) gives
  p < ``alpha``;
- **a large enough effect**: the whole confidence interval (level ``1 - alpha``) of the ratio
  of medians, contender / baseline, lies beyond the minimum effect: above ``1 + min_effect``
  or below ``1 - min_effect``.

``alpha`` defaults to 0.01, not 0.05: a farm compares hundreds of results per run, and at 0.05
every run of a large suite would bring several changes that are only noise. 0.01 is still
reachable with five samples a side (the smallest two-sided Mann-Whitney p for 5 + 5 samples
is 2/252 ≈ 0.008), the number pyperf and perffarm ask for at the least.

Verdicts are named by what the change means for the metric's direction: ``faster`` is better
(a lower time, a higher throughput), ``slower`` is worse. The ratio is always
contender / baseline in the metric's own unit, so a throughput ratio of 1.10 is ``faster``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from perffarm.model import Direction

T = TypeVar("T")

DEFAULT_MIN_EFFECT = 0.02
DEFAULT_ALPHA = 0.01
DEFAULT_BOOTSTRAP = 2000
# Above this coefficient of variation a side is flagged as unstable in the notes.
UNSTABLE_CV = 0.10
# Fewer samples than this on a side are flagged: intervals from them are wide and rough.
FEW_SAMPLES = 10


class Verdict(StrEnum):
    FASTER = "faster"
    SLOWER = "slower"
    UNCHANGED = "no significant change"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Comparison:
    """The answer to "did the contender change compared with the baseline?"."""

    verdict: Verdict
    basis: str
    """``"samples"`` (medians, bootstrap, Mann-Whitney) or ``"summary"`` (means, Welch)."""
    direction: Direction
    n_baseline: int
    n_contender: int
    baseline: float | None
    """The baseline's centre: median of the samples, or mean of the summary."""
    contender: float | None
    ratio: float | None
    """contender / baseline."""
    ratio_ci: tuple[float, float] | None
    ci_level: float
    p_value: float | None
    cliffs_delta: float | None
    """P(contender > baseline) - P(contender < baseline), from -1 to 1 (samples only)."""
    hodges_lehmann: float | None
    """Median of all contender - baseline differences, in the metric's unit (samples only)."""
    min_effect: float
    alpha: float
    notes: list[str] = field(default_factory=list)

    @property
    def change(self) -> float | None:
        """Relative change of the centre, ``ratio - 1``."""
        return None if self.ratio is None else self.ratio - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "basis": self.basis,
            "direction": self.direction.value,
            "n_baseline": self.n_baseline,
            "n_contender": self.n_contender,
            "baseline": self.baseline,
            "contender": self.contender,
            "ratio": _finite_or_none(self.ratio),
            "ratio_ci": [_finite_or_none(v) for v in self.ratio_ci] if self.ratio_ci else None,
            "ci_level": self.ci_level,
            "p_value": self.p_value,
            "cliffs_delta": self.cliffs_delta,
            "hodges_lehmann": self.hodges_lehmann,
            "min_effect": self.min_effect,
            "alpha": self.alpha,
            "notes": list(self.notes),
        }


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def ratio_of(base: float, cont: float) -> float | None:
    # A ratio says "x% slower" only between positive quantities; with a baseline of zero or
    # below, a larger ratio need not mean a larger value.
    if base <= 0.0:
        return None
    return cont / base


def decide(
    p: float | None,
    ci: tuple[float, float] | None,
    direction: Direction,
    min_effect: float,
    alpha: float,
) -> Verdict:
    if p is None or ci is None or math.isnan(ci[0]) or math.isnan(ci[1]):
        return Verdict.UNKNOWN
    if p >= alpha:
        return Verdict.UNCHANGED
    low, high = ci
    if low > 1.0 + min_effect:
        return Verdict.SLOWER if direction is Direction.LOWER else Verdict.FASTER
    if high < 1.0 - min_effect:
        return Verdict.FASTER if direction is Direction.LOWER else Verdict.SLOWER
    return Verdict.UNCHANGED


def frozen_from(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of a frozen dataclass from all its field values, without its ``__init__``.

    The generated ``__init__`` sets every field through ``object.__setattr__``; filling the
    instance's ``__dict__`` makes the same object (equal, same hash and repr) about five
    times faster, which counts when a comparison of two runs makes tens of thousands (the
    loops of samples._from_sample_rows and runs._compare_runs do the same inline).
    """
    instance: T = object.__new__(cls)
    instance.__dict__.update(values)
    return instance
