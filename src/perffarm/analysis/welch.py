"""Comparing two stored summaries (mean, stdev, n) when the samples cannot decide: Welch's
t-test and a delta-method interval for the ratio of means (``basis="summary"``).
"""

from __future__ import annotations

import math

from perffarm.analysis.verdict import (
    FEW_SAMPLES,
    UNSTABLE_CV,
    Comparison,
    Verdict,
    decide,
    ratio_of,
)
from perffarm.model import Direction, Summary


def compare_summaries(
    base: Summary,
    cont: Summary,
    direction: Direction,
    min_effect: float,
    alpha: float,
    notes: list[str],
) -> Comparison:
    from scipy import special  # scipy costs 0.3-0.7 s to import: only when used

    assert base.mean is not None and base.stdev is not None
    assert cont.mean is not None and cont.stdev is not None
    for side, mean, stdev, n in (
        ("baseline", base.mean, base.stdev, base.n),
        ("contender", cont.mean, cont.stdev, cont.n),
    ):
        if mean and stdev / abs(mean) >= UNSTABLE_CV:
            notes.append(
                f"{side}: unstable: the coefficient of variation is {stdev / abs(mean):.0%}"
            )
        if n < FEW_SAMPLES:
            notes.append(f"{side}: only {n} repetitions behind the summary")
    # The test and the interval do not depend on the unit: computed on means and stdevs
    # divided by a power of two (exact) that brings the largest below 2, no square
    # overflows (stdevs near 1e200) and no difference of means does (1e308 and -1e308).
    scale = _scale(base.mean, cont.mean, base.stdev, cont.stdev)
    base_mean, cont_mean = base.mean / scale, cont.mean / scale
    a = (base.stdev / scale) ** 2 / base.n
    b = (cont.stdev / scale) ** 2 / cont.n
    se2 = a + b
    if se2 > 0:
        t = (cont_mean - base_mean) / math.sqrt(se2)
        spread = a * a / (base.n - 1) + b * b / (cont.n - 1)
        if spread > 0:
            df = se2**2 / spread
        else:  # a * a and b * b underflow (stdevs near 1e-160): the same ratio, rescaled
            a_, b_ = a / max(a, b), b / max(a, b)
            df = (a_ + b_) ** 2 / (a_ * a_ / (base.n - 1) + b_ * b_ / (cont.n - 1))
        p = float(2.0 * special.stdtr(df, -abs(t)))
    else:
        df = float(base.n + cont.n - 2)
        p = 1.0 if cont.mean == base.mean else 0.0
    ratio = ratio_of(base.mean, cont.mean)
    level = 1 - alpha
    ci = None
    if ratio is None:
        notes.append("the baseline mean is not positive: no ratio, no verdict")
    else:
        # Delta method for a ratio of independent means: relative variances (squared
        # coefficients of variation) add up. A mean near the smallest float gives an
        # infinite interval instead of a division by zero.
        base_cv = base.stdev / abs(base.mean)
        cont_cv = cont.stdev / abs(cont.mean) if cont.mean else math.inf
        rel = math.sqrt(base_cv * base_cv / base.n + cont_cv * cont_cv / cont.n)
        quantile = float(special.stdtrit(max(df, 1.0), (1 + level) / 2))
        ci = (ratio * (1 - quantile * rel), ratio * (1 + quantile * rel))
    return Comparison(
        verdict=decide(p, ci, direction, min_effect, alpha)
        if ratio is not None
        else Verdict.UNKNOWN,
        basis="summary",
        direction=direction,
        n_baseline=base.n,
        n_contender=cont.n,
        baseline=base.mean,
        contender=cont.mean,
        ratio=ratio,
        ratio_ci=ci,
        ci_level=level,
        p_value=p,
        cliffs_delta=None,
        hodges_lehmann=None,
        min_effect=min_effect,
        alpha=alpha,
        notes=notes,
    )


def _scale(*values: float) -> float:
    """A power of two within a factor 2 of the largest magnitude of ``values`` (1 for all
    zero): dividing by it is exact and leaves magnitudes below 2."""
    largest = max(abs(value) for value in values)
    return math.ldexp(1.0, math.frexp(largest)[1] - 1) if largest else 1.0
