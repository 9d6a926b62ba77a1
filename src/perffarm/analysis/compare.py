"""Comparing two sets of samples, and two runs result by result.

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

When either side has too few samples for the test to ever reach ``alpha`` (or none at all,
as with tools that report only a mean), the comparison falls back to the stored summaries:
Welch's t-test on (mean, stdev, n) and a delta-method interval for the ratio of means, with
``basis="summary"`` and a note saying so.
"""

from __future__ import annotations

import fnmatch
import functools
import gc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import special

from perffarm.model import Direction, Result, RunDocument, Summary, canonical_params

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


def smallest_mann_whitney_p(n1: int, n2: int) -> float:
    """The smallest two-sided p the exact test can give: complete separation, 2 / C(n1+n2, n1)."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def compare_samples(
    baseline: Sequence[float],
    contender: Sequence[float],
    *,
    direction: Direction = Direction.LOWER,
    min_effect: float = DEFAULT_MIN_EFFECT,
    alpha: float = DEFAULT_ALPHA,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    baseline_summary: Summary | None = None,
    contender_summary: Summary | None = None,
) -> Comparison:
    """Compare two sets of samples; fall back to the summaries when the samples cannot decide.

    ``bootstrap`` and ``seed`` are accepted for compatibility and ignored: the bootstrap
    interval is computed from the exact bootstrap distribution, without random numbers.
    """
    del bootstrap, seed
    pair = SamplePair(
        baseline,
        contender,
        direction=direction,
        min_effect=min_effect,
        baseline_summary=baseline_summary,
        contender_summary=contender_summary,
    )
    return compare_batch([pair], alpha=alpha)[0]


@dataclass(frozen=True)
class SamplePair:
    """One comparison of a batch: what ``compare_samples`` takes, less ``alpha``."""

    baseline: Sequence[float]
    contender: Sequence[float]
    direction: Direction = Direction.LOWER
    min_effect: float = DEFAULT_MIN_EFFECT
    baseline_summary: Summary | None = None
    contender_summary: Summary | None = None


def compare_batch(pairs: Sequence[SamplePair], *, alpha: float = DEFAULT_ALPHA) -> list[Comparison]:
    """``compare_samples`` of many pairs at once: the same answers, computed together.

    Pairs that compare from samples are grouped by their sample sizes, and each group is
    computed as arrays (medians, Mann-Whitney, Hodges-Lehmann, the exact bootstrap
    interval). A pair's answer does not depend on the other pairs of the batch.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    out: list[Comparison | None] = [None] * len(pairs)
    groups: dict[tuple[int, int], list[int]] = {}
    for position, pair in enumerate(pairs):
        if pair.min_effect < 0:
            raise ValueError("the minimum effect cannot be negative")
        sizes = (_size(pair.baseline), _size(pair.contender))
        if sizes[0] >= 0 and sizes[1] >= 0 and smallest_mann_whitney_p(*sizes) < alpha:
            groups.setdefault(sizes, []).append(position)
            continue
        base = np.asarray(pair.baseline, dtype=float).reshape(-1)
        cont = np.asarray(pair.contender, dtype=float).reshape(-1)
        _check_finite(base, cont)
        if smallest_mann_whitney_p(base.size, cont.size) < alpha:
            groups.setdefault((base.size, cont.size), []).append(position)
        else:
            out[position] = _without_enough_samples(pair, base, cont, alpha)
    for (n_base, n_cont), positions in groups.items():
        members = [pairs[i] for i in positions]
        base = np.array([p.baseline for p in members], dtype=float)
        cont = np.array([p.contender for p in members], dtype=float)
        base = base.reshape(len(members), n_base)
        cont = cont.reshape(len(members), n_cont)
        _check_finite(base, cont)
        for position, comparison in zip(
            positions, _from_samples_group(base, cont, members, alpha), strict=True
        ):
            out[position] = comparison
    return [comparison for comparison in out if comparison is not None]


def _size(values: Sequence[float]) -> int:
    """How many samples a flat list or 1-D array holds; -1 for anything else."""
    if isinstance(values, np.ndarray):
        return values.size if values.ndim == 1 else -1
    if isinstance(values, list | tuple):
        return len(values)
    return -1


def _check_finite(base: np.ndarray, cont: np.ndarray) -> None:
    if not (np.isfinite(base).all() and np.isfinite(cont).all()):
        raise ValueError("samples must be finite numbers")


def _without_enough_samples(
    pair: SamplePair, base: np.ndarray, cont: np.ndarray, alpha: float
) -> Comparison:
    direction = Direction(pair.direction)
    min_effect = pair.min_effect
    if _usable(pair.baseline_summary) and _usable(pair.contender_summary):
        assert pair.baseline_summary is not None and pair.contender_summary is not None
        note = (
            f"compared from summaries (means, Welch's t-test): {base.size} and {cont.size} "
            f"samples cannot reach p < {alpha:g}"
            if base.size or cont.size
            else "compared from summaries (means, Welch's t-test): no samples stored"
        )
        return _from_summaries(
            pair.baseline_summary, pair.contender_summary, direction, min_effect, alpha, [note]
        )
    return Comparison(
        verdict=Verdict.UNKNOWN,
        basis="samples",
        direction=direction,
        n_baseline=int(base.size),
        n_contender=int(cont.size),
        baseline=float(np.median(base)) if base.size else None,
        contender=float(np.median(cont)) if cont.size else None,
        ratio=_ratio(float(np.median(base)), float(np.median(cont)))
        if base.size and cont.size
        else None,
        ratio_ci=None,
        ci_level=1 - alpha,
        p_value=None,
        cliffs_delta=None,
        hodges_lehmann=None,
        min_effect=min_effect,
        alpha=alpha,
        notes=[
            f"too few samples ({base.size} and {cont.size}): even a complete separation "
            f"cannot reach p < {alpha:g}; use at least {_needed_per_side(alpha)} "
            "repetitions on each side"
        ],
    )


def _needed_per_side(alpha: float) -> int:
    n = 1
    while smallest_mann_whitney_p(n, n) >= alpha:
        n += 1
    return n


def _usable(summary: Summary | None) -> bool:
    return (
        summary is not None
        and summary.n >= 2
        and summary.mean is not None
        and summary.stdev is not None
    )


def _ratio(base: float, cont: float) -> float | None:
    # A ratio says "x% slower" only between positive quantities; with a baseline of zero or
    # below, a larger ratio need not mean a larger value.
    if base <= 0.0:
        return None
    return cont / base


def _decide(
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


def _from_samples_group(
    base: np.ndarray, cont: np.ndarray, pairs: list[SamplePair], alpha: float
) -> list[Comparison]:
    """Comparisons of rows of equal sizes: ``base`` is (rows, n1), ``cont`` (rows, n2)."""
    level = 1 - alpha
    base_medians = np.median(base, axis=1)
    cont_medians = np.median(cont, axis=1)
    p_values, u = _mann_whitney_rows(base, cont)
    cliffs = 2.0 * u / (base.shape[1] * cont.shape[1]) - 1.0
    hodges_lehmann = _hodges_lehmann_rows(base, cont)
    low, high = exact_ratio_ci_rows(base, cont, level=level)
    base_notes = _sample_notes_rows("baseline", base)
    cont_notes = _sample_notes_rows("contender", cont)
    n_base, n_cont = int(base.shape[1]), int(cont.shape[1])
    columns = zip(
        pairs,
        base_notes,
        cont_notes,
        base_medians.tolist(),
        cont_medians.tolist(),
        p_values.tolist(),
        cliffs.tolist(),
        hodges_lehmann.tolist(),
        low.tolist(),
        high.tolist(),
        strict=True,
    )
    out = []
    for pair, b_notes, c_notes, base_median, cont_median, p, cliff, hl, lo, hi in columns:
        direction = (
            pair.direction if isinstance(pair.direction, Direction) else Direction(pair.direction)
        )
        notes = b_notes + c_notes
        ratio = _ratio(base_median, cont_median)
        ci = None
        if ratio is None:
            notes.append("the baseline median is not positive: no ratio, no verdict")
            verdict = Verdict.UNKNOWN
        else:
            ci = (lo, hi)
            verdict = _decide(p, ci, direction, pair.min_effect, alpha)
        if verdict is Verdict.UNCHANGED and p < alpha:
            notes.append(
                f"significant (p={p:.2g}) but the interval does not clear the minimum effect "
                f"of {pair.min_effect:.1%}"
            )
        out.append(
            Comparison(
                verdict=verdict,
                basis="samples",
                direction=direction,
                n_baseline=n_base,
                n_contender=n_cont,
                baseline=base_median,
                contender=cont_median,
                ratio=ratio,
                ratio_ci=ci,
                ci_level=level,
                p_value=p,
                cliffs_delta=cliff,
                hodges_lehmann=hl,
                min_effect=pair.min_effect,
                alpha=alpha,
                notes=notes,
            )
        )
    return out


def _sample_notes_rows(side: str, values: np.ndarray) -> list[list[str]]:
    """The warnings perffarm.analysis.statistics gives, for every row at once."""
    rows, n = values.shape
    notes: list[list[str]] = [[] for _ in range(rows)]
    if n < FEW_SAMPLES:
        for row_notes in notes:
            row_notes.append(f"{side}: only {n} samples; the interval is rough")
    if n >= 2:
        means = values.mean(axis=1)
        stdevs = values.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cvs = stdevs / np.abs(means)
        for row in np.flatnonzero((means != 0.0) & (cvs >= UNSTABLE_CV)):
            notes[row].append(
                f"{side}: unstable: the coefficient of variation is {cvs[row]:.0%} "
                f"(over {UNSTABLE_CV:.0%}); the machine may be busy or the benchmark too short"
            )
    lows, highs = values.min(axis=1), values.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = (lows > 0) & (highs / lows > 2)
    for row in np.flatnonzero(spread):
        notes[row].append(f"{side}: the slowest sample is more than twice the fastest")
    return notes


def _hodges_lehmann_rows(base: np.ndarray, cont: np.ndarray) -> np.ndarray:
    """Median of all contender - baseline differences, per row (chunked to bound memory)."""
    rows = base.shape[0]
    out = np.empty(rows)
    step = _chunk(base.shape[1] * cont.shape[1])
    for start in range(0, rows, step):
        b, c = base[start : start + step], cont[start : start + step]
        out[start : start + step] = np.median(
            (c[:, :, None] - b[:, None, :]).reshape(b.shape[0], -1), axis=1
        )
    return out


def _chunk(width: int) -> int:
    """Rows per chunk so that a (rows, width) array stays around a million elements."""
    return max(1, (1 << 20) // max(width, 1))


# Up to this many samples a side (and no ties) the exact distribution of U is used.
EXACT_LIMIT = 25


def mann_whitney(baseline: np.ndarray, contender: np.ndarray) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: (p-value, U of the contender).

    U counts the (contender, baseline) pairs where the contender is larger, ties half.
    Small samples without ties use the exact distribution (a cached recurrence); the others
    the normal approximation with the tie correction and a continuity correction.
    """
    base = np.asarray(baseline, dtype=float).reshape(1, -1)
    cont = np.asarray(contender, dtype=float).reshape(1, -1)
    p, u = _mann_whitney_u_rows(base, cont)
    return float(p[0]), float(u[0])


def _mann_whitney_u_rows(base: np.ndarray, cont: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mann_whitney`` of every row of (rows, n1) and (rows, n2): (p-values, U)."""
    rows, n_base = base.shape
    n_cont = cont.shape[1]
    u = np.empty(rows)
    step = _chunk(n_base * n_cont)
    for start in range(0, rows, step):
        diff = cont[start : start + step, :, None] - base[start : start + step, None, :]
        u[start : start + step] = (diff > 0).sum(axis=(1, 2)) + 0.5 * (diff == 0).sum(axis=(1, 2))
    combined = np.sort(np.concatenate((cont, base), axis=1), axis=1)
    total = n_cont + n_base
    # Each value's tie group size t; summed over the values, t^2 - 1 gives sum(t^3 - t).
    new_group = np.ones((rows, total), dtype=bool)
    new_group[:, 1:] = combined[:, 1:] != combined[:, :-1]
    positions = np.broadcast_to(np.arange(total), (rows, total))
    starts = np.maximum.accumulate(np.where(new_group, positions, 0), axis=1)
    last = np.ones((rows, total), dtype=bool)
    last[:, :-1] = new_group[:, 1:]
    ends = np.minimum.accumulate(np.where(last, positions, total)[:, ::-1], axis=1)[:, ::-1]
    sizes = (ends - starts + 1).astype(float)
    tie_sums = np.sum(sizes**2 - 1.0, axis=1)
    ties = tie_sums > 0
    p = np.empty(rows)
    exact = ~ties if max(n_cont, n_base) <= EXACT_LIMIT else np.zeros(rows, dtype=bool)
    if exact.any():
        cdf = _exact_u_cdf(n_cont, n_base)
        k = np.rint(u[exact]).astype(np.intp)
        lower = cdf[k]
        upper = 1.0 - np.where(k > 0, cdf[np.maximum(k - 1, 0)], 0.0)
        p[exact] = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    approx = ~exact
    if approx.any():
        tie_term = tie_sums[approx] / (total * (total - 1))
        variance = n_cont * n_base / 12.0 * ((total + 1) - tie_term)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.maximum(np.abs(u[approx] - n_cont * n_base / 2.0) - 0.5, 0.0) / np.sqrt(variance)
            p[approx] = np.where(variance > 0.0, np.minimum(1.0, 2.0 * special.ndtr(-z)), 1.0)
    return p, u


@functools.cache
def _exact_u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many orderings of m + n distinct values give each U = 0 .. m·n.

    The largest value belongs to one of the two samples: to the first, and it beats all n of
    the other; to the second, and it adds nothing. Hence
    counts(m, n)[u] = counts(m-1, n)[u-n] + counts(m, n-1)[u].
    """
    if m == 0 or n == 0:
        return (1,)
    first = _exact_u_counts(m - 1, n)
    second = _exact_u_counts(m, n - 1)
    out = [0] * (m * n + 1)
    for u, ways in enumerate(second):
        out[u] += ways
    for u, ways in enumerate(first):
        out[u + n] += ways
    return tuple(out)


@functools.cache
def _exact_u_cdf(m: int, n: int) -> np.ndarray:
    counts = np.array(_exact_u_counts(m, n), dtype=float)
    return np.cumsum(counts) / math.comb(m + n, m)


def _mann_whitney_rows(base: np.ndarray, cont: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(two-sided p, U) per row. Identical constant sides are simply no evidence."""
    p, u = _mann_whitney_u_rows(base, cont)
    constant = (
        (np.ptp(base, axis=1) == 0.0) & (np.ptp(cont, axis=1) == 0.0) & (base[:, 0] == cont[:, 0])
    )
    p[constant] = 1.0
    u[constant] = base.shape[1] * cont.shape[1] / 2.0
    return p, u


# -- the exact bootstrap ---------------------------------------------------------------------


@functools.cache
def bootstrap_median_weights(n: int) -> np.ndarray:
    """P(the bootstrap median of n samples is the i-th smallest sample), i = 0 .. n-1.

    A resample draws n indices with replacement; at most k of its draws fall on the i
    smallest samples with probability P(Binomial(n, i/n) <= k), so the r-th order statistic
    of the resample is at most the i-th sample with probability P(Binomial(n, i/n) >= r). For
    odd n the median is the order statistic r = (n + 1) / 2. For even n the bootstrap median
    is the lower or the upper of the two middle values of the resample, each with
    probability 1/2, which is the same distribution as the median of n - 1 draws (odd):
    r = n / 2 of a Binomial(n - 1, i/n). Computed in integers, so the weights are exact to
    the last bit of a float; they depend on n only.
    """
    if n < 1:
        raise ValueError("no samples")
    draws = n if n % 2 else n - 1
    rank = (draws + 1) // 2
    at_most = [
        sum(math.comb(draws, k) * i**k * (n - i) ** (draws - k) for k in range(rank, draws + 1))
        for i in range(n + 1)
    ]
    scale = n**draws
    return np.array(
        [float(Fraction(at_most[i + 1] - at_most[i], scale)) for i in range(n)], dtype=float
    )


@functools.cache
def _pair_weights(n_base: int, n_cont: int) -> np.ndarray:
    """Weights of the (contender index, baseline index) pairs, flattened contender-major."""
    return np.outer(bootstrap_median_weights(n_cont), bootstrap_median_weights(n_base)).ravel()


def exact_ratio_ci(
    baseline: Sequence[float], contender: Sequence[float], *, level: float = 1 - DEFAULT_ALPHA
) -> tuple[float, float]:
    """Percentile bootstrap interval of median(contender) / median(baseline), exactly.

    The interval a bootstrap with infinitely many resamples converges to: each median's
    bootstrap distribution is known exactly (``bootstrap_median_weights``), the two are
    independent, so the ratio takes each value c_k / b_l with probability w_k · w_l. The
    low end is the smallest value whose cumulative probability reaches (1 - level) / 2, the
    high end the largest whose upper-tail probability does. No random numbers.
    """
    base = np.sort(np.asarray(baseline, dtype=float).reshape(1, -1), axis=1)
    cont = np.sort(np.asarray(contender, dtype=float).reshape(1, -1), axis=1)
    low, high = exact_ratio_ci_rows(base, cont, level=level)
    return float(low[0]), float(high[0])


def exact_ratio_ci_rows(
    base: np.ndarray, cont: np.ndarray, *, level: float = 1 - DEFAULT_ALPHA
) -> tuple[np.ndarray, np.ndarray]:
    """``exact_ratio_ci`` of every row of (rows, n1) and (rows, n2) arrays: (lows, highs)."""
    base = np.sort(base, axis=1)
    cont = np.sort(cont, axis=1)
    rows, n_base = base.shape
    n_cont = cont.shape[1]
    weights = _pair_weights(n_base, n_cont)
    tail = (1 - level) / 2
    # A cumulative sum within float rounding of the tail counts as reaching it, so that a
    # tail met exactly (e.g. by symmetric weights) is read the same way at both ends.
    reach = tail * (1 - 1e-9)
    lows, highs = np.empty(rows), np.empty(rows)
    step = _chunk(n_base * n_cont)
    for start in range(0, rows, step):
        b, c = base[start : start + step], cont[start : start + step]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = (c[:, :, None] / b[:, None, :]).reshape(b.shape[0], -1)
        order = np.argsort(ratios, axis=1, kind="stable")
        ordered = np.take_along_axis(ratios, order, axis=1)
        mass = weights[order]
        below = np.cumsum(mass, axis=1)
        above = np.cumsum(mass[:, ::-1], axis=1)[:, ::-1]
        first = np.argmax(below >= reach, axis=1)
        last = mass.shape[1] - 1 - np.argmax(above[:, ::-1] >= reach, axis=1)
        low = ordered[np.arange(b.shape[0]), first]
        high = ordered[np.arange(b.shape[0]), last]
        # 0/0 is no ratio at all: the interval is undefined (and the verdict unknown).
        undefined = np.isnan(ordered).any(axis=1)
        low[undefined] = np.nan
        high[undefined] = np.nan
        lows[start : start + step] = low
        highs[start : start + step] = high
    return lows, highs


def _from_summaries(
    base: Summary,
    cont: Summary,
    direction: Direction,
    min_effect: float,
    alpha: float,
    notes: list[str],
) -> Comparison:
    assert base.mean is not None and base.stdev is not None
    assert cont.mean is not None and cont.stdev is not None
    for side, summary in (("baseline", base), ("contender", cont)):
        if summary.mean and summary.stdev / abs(summary.mean) >= UNSTABLE_CV:
            notes.append(
                f"{side}: unstable: the coefficient of variation is "
                f"{summary.stdev / abs(summary.mean):.0%}"
            )
        if summary.n < FEW_SAMPLES:
            notes.append(f"{side}: only {summary.n} repetitions behind the summary")
    a = base.stdev**2 / base.n
    b = cont.stdev**2 / cont.n
    se2 = a + b
    if se2 > 0:
        t = (cont.mean - base.mean) / math.sqrt(se2)
        df = se2**2 / (a * a / (base.n - 1) + b * b / (cont.n - 1))
        p = float(2.0 * special.stdtr(df, -abs(t)))
    else:
        df = float(base.n + cont.n - 2)
        p = 1.0 if cont.mean == base.mean else 0.0
    ratio = _ratio(base.mean, cont.mean)
    level = 1 - alpha
    ci = None
    if ratio is None:
        notes.append("the baseline mean is not positive: no ratio, no verdict")
    else:
        # Delta method for a ratio of independent means: relative variances add up.
        rel = math.sqrt(a / base.mean**2 + b / cont.mean**2) if cont.mean else math.inf
        quantile = float(special.stdtrit(max(df, 1.0), (1 + level) / 2))
        ci = (ratio * (1 - quantile * rel), ratio * (1 + quantile * rel))
    return Comparison(
        verdict=_decide(p, ci, direction, min_effect, alpha)
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


# -- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """Per-benchmark settings (from the suite YAML): a different threshold, direction, or skip."""

    min_effect: float | None = None
    direction: Direction | None = None
    ignore: bool = False


class Presence(StrEnum):
    BOTH = "both"
    BASELINE_ONLY = "baseline only"
    CONTENDER_ONLY = "contender only"
    IGNORED = "ignored"


@dataclass(frozen=True)
class ResultComparison:
    """One (benchmark, params, metric) of two runs and how it compares."""

    benchmark: str
    params: dict[str, Any]
    metric: str
    unit: str
    presence: Presence
    comparison: Comparison | None

    @property
    def verdict(self) -> Verdict:
        return self.comparison.verdict if self.comparison else Verdict.UNKNOWN

    @property
    def name(self) -> str:
        """``benchmark[k=v,...] metric``: how a person reads the key."""
        params = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return (
            f"{self.benchmark}[{params}] {self.metric}"
            if params
            else (f"{self.benchmark} {self.metric}")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "params": self.params,
            "metric": self.metric,
            "unit": self.unit,
            "presence": self.presence.value,
            "verdict": self.verdict.value,
            "comparison": self.comparison.to_dict() if self.comparison else None,
        }


def _override_for(benchmark: str, overrides: Mapping[str, Override] | None) -> Override | None:
    """The exact name's override, else the first glob pattern (in the given order) matching."""
    if not overrides:
        return None
    if benchmark in overrides:
        return overrides[benchmark]
    for pattern, override in overrides.items():
        if fnmatch.fnmatchcase(benchmark, pattern):
            return override
    return None


def _index(results: Sequence[Result]) -> dict[tuple[str, str, str], list[Result]]:
    index: dict[tuple[str, str, str], list[Result]] = {}
    canonical: dict[Any, str] = {}
    for result in results:
        key = (result.benchmark, _canonical(result.params, canonical), result.metric)
        index.setdefault(key, []).append(result)
    return index


def _canonical(params: Mapping[str, Any], seen: dict[Any, str]) -> str:
    """``canonical_params``, remembered per distinct params (values typed: 1, 1.0, True differ)."""
    try:
        marker = tuple(sorted((k, type(v), v) for k, v in params.items()))
        text = seen.get(marker)
    except TypeError:  # unhashable or unorderable values
        return canonical_params(dict(params))
    if text is None:
        text = seen[marker] = canonical_params(dict(params))
    return text


def _pooled(results: list[Result]) -> tuple[list[float], Summary | None]:
    """A key measured twice in one run: its samples together, the summary only if alone."""
    if len(results) == 1:
        return results[0].samples, results[0].summary
    samples = [value for result in results for value in result.samples]
    summary = results[0].summary if len(results) == 1 else None
    return samples, summary


def compare_runs(
    baseline: RunDocument,
    contender: RunDocument,
    overrides: Mapping[str, Override] | None = None,
    *,
    min_effect: float = DEFAULT_MIN_EFFECT,
    alpha: float = DEFAULT_ALPHA,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> list[ResultComparison]:
    """Compare every result of two runs matched by (benchmark, canonical params, metric).

    Results on one side only are listed with their ``presence`` and no comparison; the order
    is the contender's, then what only the baseline has. All comparisons are computed as one
    batch (``compare_batch``); ``bootstrap`` and ``seed`` are ignored (the interval is exact).
    """
    del bootstrap, seed
    # Thousands of small objects are made at once: a cyclic garbage collection half-way
    # through would only walk them (and the documents) to find no cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _compare_runs(baseline, contender, overrides, min_effect=min_effect, alpha=alpha)
    finally:
        if collecting:
            gc.enable()


def _compare_runs(
    baseline: RunDocument,
    contender: RunDocument,
    overrides: Mapping[str, Override] | None,
    *,
    min_effect: float,
    alpha: float,
) -> list[ResultComparison]:
    base_index = _index(baseline.results)
    cont_index = _index(contender.results)
    keys = list(cont_index) + [key for key in base_index if key not in cont_index]
    comparisons: list[ResultComparison | None] = []
    # (position in comparisons, entry, extra notes) of each key compared, in batch order.
    compared: list[tuple[int, dict[str, Any], list[str]]] = []
    pairs: list[SamplePair] = []
    for key in keys:
        base_results = base_index.get(key)
        cont_results = cont_index.get(key)
        first = (cont_results or base_results or [])[0]
        override = _override_for(first.benchmark, overrides)
        entry = {
            "benchmark": first.benchmark,
            "params": dict(first.params),
            "metric": first.metric,
            "unit": first.unit,
        }
        if override is not None and override.ignore:
            comparisons.append(
                ResultComparison(**entry, presence=Presence.IGNORED, comparison=None)
            )
            continue
        if not base_results or not cont_results:
            presence = Presence.CONTENDER_ONLY if cont_results else Presence.BASELINE_ONLY
            comparisons.append(ResultComparison(**entry, presence=presence, comparison=None))
            continue
        direction = (
            override.direction
            if override is not None and override.direction is not None
            else first.direction
        )
        base_samples, base_summary = _pooled(base_results)
        cont_samples, cont_summary = _pooled(cont_results)
        pairs.append(
            SamplePair(
                base_samples,
                cont_samples,
                direction=direction,
                min_effect=(
                    override.min_effect
                    if override is not None and override.min_effect is not None
                    else min_effect
                ),
                baseline_summary=base_summary,
                contender_summary=cont_summary,
            )
        )
        extra = []
        if base_results[0].direction != cont_results[0].direction:
            extra.append(
                f"the runs disagree on the direction; compared as {direction.value} is better"
            )
        if base_results[0].unit != cont_results[0].unit:
            extra.append(
                f"the units differ ({base_results[0].unit} and {cont_results[0].unit}): "
                "the ratio may mean nothing"
            )
        if len(base_results) > 1 or len(cont_results) > 1:
            extra.append("measured more than once in a run: samples pooled")
        compared.append((len(comparisons), entry, extra))
        comparisons.append(None)
    for (position, entry, extra), comparison in zip(
        compared, compare_batch(pairs, alpha=alpha), strict=True
    ):
        if extra:
            comparison = _with_notes(comparison, extra)
        comparisons[position] = ResultComparison(
            **entry, presence=Presence.BOTH, comparison=comparison
        )
    return [item for item in comparisons if item is not None]


def _with_notes(comparison: Comparison, notes: list[str]) -> Comparison:
    return replace(comparison, notes=[*comparison.notes, *notes])


def series_key_text(benchmark: str, params: Mapping[str, Any], metric: str) -> str:
    """A stable one-line key, e.g. for JUnit test names or JSON maps."""
    return f"{benchmark}|{canonical_params(dict(params))}|{metric}"
