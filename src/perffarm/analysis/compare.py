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
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
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
    """Compare two sets of samples; fall back to the summaries when the samples cannot decide."""
    if min_effect < 0:
        raise ValueError("the minimum effect cannot be negative")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    base = np.asarray(baseline, dtype=float).reshape(-1)
    cont = np.asarray(contender, dtype=float).reshape(-1)
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(cont))):
        raise ValueError("samples must be finite numbers")
    direction = Direction(direction)
    enough = smallest_mann_whitney_p(base.size, cont.size) < alpha
    if enough:
        return _from_samples(base, cont, direction, min_effect, alpha, bootstrap, seed)
    if _usable(baseline_summary) and _usable(contender_summary):
        assert baseline_summary is not None and contender_summary is not None
        note = (
            f"compared from summaries (means, Welch's t-test): {base.size} and {cont.size} "
            f"samples cannot reach p < {alpha:g}"
            if base.size or cont.size
            else "compared from summaries (means, Welch's t-test): no samples stored"
        )
        return _from_summaries(
            baseline_summary, contender_summary, direction, min_effect, alpha, [note]
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


def _from_samples(
    base: np.ndarray,
    cont: np.ndarray,
    direction: Direction,
    min_effect: float,
    alpha: float,
    bootstrap: int,
    seed: int,
) -> Comparison:
    notes = _sample_notes("baseline", base) + _sample_notes("contender", cont)
    base_median = float(np.median(base))
    cont_median = float(np.median(cont))
    ratio = _ratio(base_median, cont_median)
    level = 1 - alpha
    ci = None
    if ratio is None:
        notes.append("the baseline median is not positive: no ratio, no verdict")
    else:
        ci = bootstrap_ratio_ci(base, cont, level=level, resamples=bootstrap, seed=seed)
    p, cliffs = _mann_whitney(base, cont)
    differences = cont[:, None] - base[None, :]
    hodges_lehmann = float(np.median(differences))
    verdict = _decide(p, ci, direction, min_effect, alpha) if ratio is not None else Verdict.UNKNOWN
    if verdict is Verdict.UNCHANGED and p < alpha:
        notes.append(
            f"significant (p={p:.2g}) but the interval does not clear the minimum effect "
            f"of {min_effect:.1%}"
        )
    return Comparison(
        verdict=verdict,
        basis="samples",
        direction=direction,
        n_baseline=int(base.size),
        n_contender=int(cont.size),
        baseline=base_median,
        contender=cont_median,
        ratio=ratio,
        ratio_ci=ci,
        ci_level=level,
        p_value=p,
        cliffs_delta=cliffs,
        hodges_lehmann=hodges_lehmann,
        min_effect=min_effect,
        alpha=alpha,
        notes=notes,
    )


def _sample_notes(side: str, values: np.ndarray) -> list[str]:
    # The warnings perffarm.analysis.statistics gives, computed directly: this runs
    # thousands of times per run comparison and needs neither intervals nor quartiles.
    notes: list[str] = []
    if values.size < FEW_SAMPLES:
        notes.append(f"{side}: only {values.size} samples; the interval is rough")
    mean = float(values.mean())
    if values.size >= 2 and mean != 0.0:
        cv = float(values.std(ddof=1)) / abs(mean)
        if cv >= UNSTABLE_CV:
            notes.append(
                f"{side}: unstable: the coefficient of variation is {cv:.0%} "
                f"(over {UNSTABLE_CV:.0%}); the machine may be busy or the benchmark too short"
            )
    low, high = float(values.min()), float(values.max())
    if low > 0 and high / low > 2:
        notes.append(f"{side}: the slowest sample is more than twice the fastest")
    return notes


# Up to this many samples a side (and no ties) the exact distribution of U is used.
EXACT_LIMIT = 25


def mann_whitney(baseline: np.ndarray, contender: np.ndarray) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: (p-value, U of the contender).

    U counts the (contender, baseline) pairs where the contender is larger, ties half.
    Small samples without ties use the exact distribution (a cached recurrence); the others
    the normal approximation with the tie correction and a continuity correction.
    """
    n_cont, n_base = contender.size, baseline.size
    combined = np.concatenate((contender, baseline))
    _, inverse, counts = np.unique(combined, return_inverse=True, return_counts=True)
    # Average ranks: tied values share the middle of the ranks they occupy.
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    u = float(ranks[:n_cont].sum()) - n_cont * (n_cont + 1) / 2.0
    ties = bool(np.any(counts > 1))
    if not ties and max(n_cont, n_base) <= EXACT_LIMIT:
        cdf = _exact_u_cdf(n_cont, n_base)
        k = round(u)
        lower = float(cdf[k])
        upper = 1.0 - (float(cdf[k - 1]) if k > 0 else 0.0)
        return min(1.0, 2.0 * min(lower, upper)), u
    total = n_cont + n_base
    tie_term = float(np.sum(counts.astype(float) ** 3 - counts)) / (total * (total - 1))
    variance = n_cont * n_base / 12.0 * ((total + 1) - tie_term)
    if variance <= 0.0:
        return 1.0, u
    z = max(abs(u - n_cont * n_base / 2.0) - 0.5, 0.0) / math.sqrt(variance)
    return float(min(1.0, 2.0 * special.ndtr(-z))), u


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


def _mann_whitney(base: np.ndarray, cont: np.ndarray) -> tuple[float, float]:
    """(two-sided p, Cliff's delta). Identical constant sides are simply no evidence."""
    if np.ptp(np.concatenate((base, cont))) == 0.0:
        return 1.0, 0.0
    p, u = mann_whitney(base, cont)
    return p, 2.0 * u / (base.size * cont.size) - 1.0


def bootstrap_ratio_ci(
    baseline: np.ndarray,
    contender: np.ndarray,
    *,
    level: float = 1 - DEFAULT_ALPHA,
    resamples: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of median(contender) / median(baseline).

    All resamples are drawn at once as index matrices, so one comparison is a few array
    operations; the generator is seeded, so the interval is the same on every run.
    """
    rng = np.random.default_rng(seed)
    base_medians = _resampled_medians(np.sort(baseline), resamples, rng)
    cont_medians = _resampled_medians(np.sort(contender), resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = cont_medians / base_medians
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def _resampled_medians(ordered: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``resamples`` bootstrap resamples of sorted values.

    Sorting a resample's *indices* gives its order statistics, because the values are sorted
    too; small integers sort several times faster than ``np.median`` partitions floats.
    """
    n = ordered.size
    indices = np.sort(rng.integers(0, n, size=(resamples, n), dtype=np.int32), axis=1)
    return (ordered[indices[:, (n - 1) // 2]] + ordered[indices[:, n // 2]]) / 2.0


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
    for result in results:
        index.setdefault(result.series_key(), []).append(result)
    return index


def _pooled(results: list[Result]) -> tuple[list[float], Summary | None]:
    """A key measured twice in one run: its samples together, the summary only if alone."""
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
    is the contender's, then what only the baseline has.
    """
    base_index = _index(baseline.results)
    cont_index = _index(contender.results)
    keys = list(cont_index) + [key for key in base_index if key not in cont_index]
    comparisons: list[ResultComparison] = []
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
        comparison = compare_samples(
            base_samples,
            cont_samples,
            direction=direction,
            min_effect=(
                override.min_effect
                if override is not None and override.min_effect is not None
                else min_effect
            ),
            alpha=alpha,
            bootstrap=bootstrap,
            seed=seed,
            baseline_summary=base_summary,
            contender_summary=cont_summary,
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
        if extra:
            comparison = _with_notes(comparison, extra)
        comparisons.append(ResultComparison(**entry, presence=Presence.BOTH, comparison=comparison))
    return comparisons


def _with_notes(comparison: Comparison, notes: list[str]) -> Comparison:
    return replace(comparison, notes=[*comparison.notes, *notes])


def series_key_text(benchmark: str, params: Mapping[str, Any], metric: str) -> str:
    """A stable one-line key, e.g. for JUnit test names or JSON maps."""
    return f"{benchmark}|{canonical_params(dict(params))}|{metric}"
