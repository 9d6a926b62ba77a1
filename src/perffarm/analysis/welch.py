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
    # t, the degrees of freedom, the ratio and its relative error do not change when means
    # and stdevs are divided by one number: dividing by a power of two (exact) near the
    # largest of them keeps the squares below 4, so figures near 1e154 and beyond no
    # longer overflow (the underflow of tiny ones is handled below).
    scale = _power_of_two_near(max(abs(base.mean), abs(cont.mean), base.stdev, cont.stdev))
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
        p = 1.0 if cont_mean == base_mean else 0.0
    ratio = ratio_of(base.mean, cont.mean)
    level = 1 - alpha
    ci = None
    if ratio is None:
        notes.append("the baseline mean is not positive: no ratio, no verdict")
    else:
        # Delta method for a ratio of independent means: relative variances add up.
        # From the coefficients of variation, in the figures' own units: a mean far below
        # its stdev (5e-324 beside 1e300) would underflow to 0 once scaled or squared.
        # Products, not powers: an overflow gives infinity (an unbounded interval), where
        # ** raises.
        cv_base = base.stdev / abs(base.mean)
        cv_cont = cont.stdev / abs(cont.mean) if cont.mean else math.inf
        rel = math.sqrt(cv_base * cv_base / base.n + cv_cont * cv_cont / cont.n)
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


def _power_of_two_near(value: float) -> float:
    """A power of two near ``value`` (1 for 0), at least half of it: an exact divisor that
    brings it below 2 (2**1024 is beyond a float, so the largest is 2**1023)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    return math.ldexp(1.0, min(math.frexp(value)[1], 1023))
