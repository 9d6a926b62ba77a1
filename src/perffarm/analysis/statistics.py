"""Summary statistics of one result's samples, with the warnings pyperf taught us to give.

The confidence interval of the mean uses Student's t; the one of the median is
distribution-free (order statistics from the binomial distribution), so it stays honest for
the skewed, outlier-prone timings benchmarks produce.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from perffarm.model import ConfidenceInterval, Summary

CONFIDENCE = 0.95
# Below this many samples neither interval nor outlier test means much.
MIN_SAMPLES = 5
# pyperf warns from 10% on; timings on a quiet machine stay well under it.
UNSTABLE_CV = 0.10


class BasicSummary(NamedTuple):
    """The cheap part of a summary: no interval, no quartile (``basic_summary``)."""

    n: int
    mean: float | None
    median: float | None
    stdev: float | None
    min: float | None
    max: float | None


def basic_summary(samples: Iterable[float]) -> BasicSummary:
    """n, mean, median, sample standard deviation (n - 1), min and max of ``samples``.

    The definitions ``summarize`` uses for these fields (it calls this), computed without
    numpy, so that summing up one small result costs microseconds: the mean is the
    correctly rounded sum (``math.fsum``) over n, the median the middle value or the mean
    of the two middle ones, the standard deviation from the squared deviations from that
    mean (None below two samples). No samples: n = 0 and None elsewhere.
    """
    ordered = sorted(map(float, samples))
    n = len(ordered)
    if n == 0:
        return BasicSummary(0, None, None, None, None, None)
    mean = _mean(ordered)
    half = n // 2
    median = ordered[half] if n % 2 else _midpoint(ordered[half - 1], ordered[half])
    stdev = _stdev(ordered, mean) if n >= 2 else None
    return BasicSummary(n, mean, median, stdev, ordered[0], ordered[-1])


def _midpoint(low: float, high: float) -> float:
    middle = (low + high) / 2
    return middle if math.isfinite(middle) else low / 2 + high / 2


def _stdev(ordered: list[float], mean: float) -> float | None:
    """The sample standard deviation; None when it is beyond the largest float.

    The deviations are taken of the samples divided by a power of two near the largest
    magnitude (exact, so the figures are the same as without it), so that neither a
    deviation (1e308 from -1e308) nor its square (1e200 squared) overflows."""
    if not (math.isfinite(ordered[0]) and math.isfinite(ordered[-1]) and math.isfinite(mean)):
        return math.nan  # an infinite sample: no spread to speak of
    scale = _power_of_two_near(max(-ordered[0], ordered[-1]))
    centre = mean / scale
    squares = math.fsum([(value / scale - centre) ** 2 for value in ordered])
    stdev = math.sqrt(squares / (len(ordered) - 1)) * scale
    return stdev if math.isfinite(stdev) else None


def _power_of_two_near(largest: float) -> float:
    """A power of two within a factor 2 of ``largest`` (1 for 0)."""
    return math.ldexp(1.0, math.frexp(largest)[1] - 1) if largest > 0 else 1.0


def _mean(values: list[float]) -> float:
    """The mean of sorted ``values``."""
    n = len(values)
    try:
        return math.fsum(values) / n
    except OverflowError:
        pass
    except ValueError:  # both infinities
        return math.nan
    # The sum is beyond a float, the mean is not: sum values scaled down by a power of two
    # (exact) so that no partial sum overflows, and keep the result between the extremes,
    # where rounding near the largest float could otherwise push it to infinity.
    scale = 2.0 ** (n.bit_length() + 1)
    mean = math.fsum([value / scale for value in values]) / n * scale
    return min(max(mean, values[0]), values[-1])


def summarize(samples: Sequence[float], *, confidence: float = CONFIDENCE) -> Summary:
    """Statistics of ``samples``; empty input gives ``n=0`` and a warning, never an error.

    n, mean, median, stdev, min and max are ``basic_summary``'s.
    """
    from scipy import stats as scipy_stats  # scipy costs 0.3-0.7 s to import: only when used

    values = np.asarray(samples, dtype=float).reshape(-1)
    basic = basic_summary(values.tolist())
    n = basic.n
    if n == 0:
        return Summary(n=0, warnings=["no samples"])
    assert basic.mean is not None
    mean = basic.mean
    if not np.isfinite(values).all():
        # Only a plug-in that changed samples after they were checked gets here: a summary
        # holds finite figures, so there are none to give (the run keeps a note).
        return Summary(n=n, warnings=["samples that are not finite numbers: no statistics"])
    summary = Summary(
        n=n,
        mean=mean,
        median=basic.median,
        min=basic.min,
        max=basic.max,
    )
    if n >= 2:
        # A figure beyond the largest float (the spread of samples near it, a mean near
        # zero under a large spread) is left unknown: a summary holds finite numbers.
        stdev = basic.stdev
        summary.stdev = stdev
        summary.median_ci = _median_interval(np.sort(values), confidence)
        if stdev is not None:
            summary.cv = _finite(stdev / abs(mean)) if mean != 0 else None
            t = float(scipy_stats.t.ppf((1 + confidence) / 2, n - 1))
            half_width = t * stdev / math.sqrt(n)
            low, high = mean - half_width, mean + half_width
            if math.isfinite(low) and math.isfinite(high):
                summary.mean_ci = ConfidenceInterval(low=low, high=high, level=confidence)
        with np.errstate(over="ignore", invalid="ignore"):
            q1, q3 = (_finite(float(q)) for q in np.percentile(values, [25, 75]))
            if (q1 is None or q3 is None) and np.isfinite(values).all():
                # The interpolation overflowed (a spread beyond a float): halved values
                # interpolate within range, and doubling them back is exact.
                q1, q3 = (_finite(2 * float(q)) for q in np.percentile(values / 2, [25, 75]))
            summary.q1, summary.q3 = q1, q3
            if q1 is not None and q3 is not None:
                fence = 1.5 * (q3 - q1)
                outside = (values < q1 - fence) | (values > q3 + fence)
                summary.outliers = int(np.count_nonzero(outside))
    summary.warnings = _warnings(summary)
    return summary


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _median_interval(ordered: np.ndarray, confidence: float) -> ConfidenceInterval:
    """Order-statistic interval: ranks where Binomial(n, 1/2) leaves alpha/2 in each tail.

    With few samples the exact coverage is above the nominal level; the interval then is
    simply the widest one the data can give (min to max), which is the honest answer.
    """
    from scipy import stats as scipy_stats  # scipy costs 0.3-0.7 s to import: only when used

    n = ordered.size
    alpha = 1 - confidence
    # k is the smallest rank with P(B <= k - 1) < alpha/2; then [x(k), x(n-k+1)].
    lower_rank = max(int(scipy_stats.binom.ppf(alpha / 2, n, 0.5)), 1)
    upper_rank = n - lower_rank + 1
    upper_rank = min(max(upper_rank, lower_rank), n)
    return ConfidenceInterval(
        low=float(ordered[lower_rank - 1]), high=float(ordered[upper_rank - 1]), level=confidence
    )


def _warnings(summary: Summary) -> list[str]:
    warnings: list[str] = []
    if summary.n < MIN_SAMPLES:
        warnings.append(
            f"only {summary.n} sample{'s' if summary.n != 1 else ''}: "
            f"use at least {MIN_SAMPLES} repetitions for a usable confidence interval"
        )
    if summary.cv is not None and summary.cv >= UNSTABLE_CV:
        warnings.append(
            f"unstable: the coefficient of variation is {summary.cv:.0%} "
            f"(over {UNSTABLE_CV:.0%}); the machine may be busy or the benchmark too short"
        )
    if summary.n >= MIN_SAMPLES and summary.outliers > summary.n // 10:
        warnings.append(f"{summary.outliers} of {summary.n} samples are outliers (1.5 IQR)")
    if (
        summary.min is not None
        and summary.max is not None
        and summary.min > 0
        and summary.n >= MIN_SAMPLES
        and summary.max / summary.min > 2
    ):
        warnings.append("the largest sample is more than twice the smallest")
    return warnings
