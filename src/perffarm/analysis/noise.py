"""How noisy a series is, and how many repetitions it takes to see a small change in it.

Two measures of spread, both relative to the level so that they compare across units:

- ``cv``: the coefficient of variation of all values (stdev / |mean|). It counts every real
  change of level in the history as noise too.
- ``run_to_run``: a robust spread of successive differences, ``median(|x[i+1] - x[i]|)`` over
  ``0.6745·√2`` (what that median is, in standard deviations, for normal noise), relative
  to ``|median|``. A step or a slow drift barely moves it, and neither do a few outliers;
  it estimates the noise one new point carries, which is what a detector has to beat.

The recommended number of repetitions (per side, for comparing two runs) to detect a
relative change ``effect`` with a two-sided test at level ``alpha`` and the given ``power``::

    n = ceil( 2 · (z(1 - alpha/2) + z(power))² · (noise / effect)² / (3/π) )

the normal-approximation sample size of a two-sample test on means, divided by the asymptotic
relative efficiency of the Mann-Whitney test against the t-test for normal data (3/π ≈ 0.955),
as perffarm's comparisons use Mann-Whitney. Never fewer than 5, the least with which
Mann-Whitney can reach p < 0.01 at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perffarm.analysis.compare import DEFAULT_ALPHA

DEFAULT_EFFECT = 0.02
DEFAULT_POWER = 0.8
MIN_REPETITIONS = 5
# For normal noise: median |difference of two independent points| = 0.6745 · √2 · sigma.
_SUCCESSIVE_MAD_TO_SIGMA = 1.0 / (0.6744897501960817 * math.sqrt(2.0))
# Where the labels change; figures of quiet and of busy benchmark machines.
QUIET_BELOW = 0.01
NOISY_FROM = 0.05


@dataclass(frozen=True)
class NoiseReport:
    """The noise of one series."""

    n: int
    mean: float | None
    median: float | None
    cv: float | None
    run_to_run: float | None
    """Robust relative noise from successive differences (see the module's docstring)."""
    level: str
    """``quiet`` (< 1%), ``moderate`` or ``noisy`` (≥ 5%), from run_to_run; ``unknown``."""
    recommended_repetitions: int | None
    """Repetitions per side to detect a 2% change (alpha 0.01, power 0.8)."""
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": self.mean,
            "median": self.median,
            "cv": self.cv,
            "run_to_run": self.run_to_run,
            "level": self.level,
            "recommended_repetitions": self.recommended_repetitions,
            "warnings": list(self.warnings),
        }


def recommended_repetitions(
    noise: float,
    *,
    effect: float = DEFAULT_EFFECT,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
) -> int:
    """Repetitions per side to detect a relative change ``effect`` at relative noise ``noise``."""
    from scipy import special  # scipy costs 0.3-0.7 s to import: only when used

    if effect <= 0:
        raise ValueError("the effect to detect must be positive")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be between 0 and 1")
    if noise < 0 or not math.isfinite(noise):
        raise ValueError("the noise must be a finite, non-negative number")
    z_alpha = float(special.ndtri(1 - alpha / 2))
    z_power = float(special.ndtri(power))
    n = 2.0 * (z_alpha + z_power) ** 2 * (noise / effect) ** 2 / (3.0 / math.pi)
    return max(MIN_REPETITIONS, math.ceil(n))


def noise_score(
    values: Sequence[float] | np.ndarray, *, effect: float = DEFAULT_EFFECT
) -> NoiseReport:
    """The noise report of a series (its points in order)."""
    array = np.asarray(values, dtype=float).reshape(-1)
    n = int(array.size)
    warnings: list[str] = []
    if n == 0:
        return NoiseReport(0, None, None, None, None, "unknown", None, ["no values"])
    mean = float(array.mean())
    median = float(np.median(array))
    cv = float(array.std(ddof=1)) / abs(mean) if n >= 2 and mean != 0.0 else None
    run_to_run = None
    if n >= 3 and median != 0.0:
        spread = float(np.median(np.abs(np.diff(array)))) * _SUCCESSIVE_MAD_TO_SIGMA
        run_to_run = spread / abs(median)
    if n < 10:
        warnings.append(f"only {n} points: the noise estimate is rough")
    if median == 0.0:
        warnings.append("the median is 0: no relative noise")
    if cv is not None and run_to_run is not None and cv > 3 * max(run_to_run, 1e-12):
        warnings.append(
            "the spread of all values is far above the point-to-point noise: "
            "the series has changes of level or a drift"
        )
    if run_to_run is None:
        level = "unknown"
    elif run_to_run < QUIET_BELOW:
        level = "quiet"
    elif run_to_run < NOISY_FROM:
        level = "moderate"
    else:
        level = "noisy"
    repetitions = (
        recommended_repetitions(run_to_run, effect=effect) if run_to_run is not None else None
    )
    return NoiseReport(n, mean, median, cv, run_to_run, level, repetitions, warnings)
