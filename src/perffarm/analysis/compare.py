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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import special

from perffarm.gcpause import collector_paused
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

    Pairs that compare from samples are computed as arrays (medians, Mann-Whitney,
    Hodges-Lehmann, the exact bootstrap interval), grouped by their sample sizes; sizes that
    few pairs share are padded into a few size classes, so that a run whose results vary in
    size still makes few groups. Every value is computed row by row, exactly as for the pair
    alone: a pair's answer does not depend on the other pairs of the batch.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    out: list[Comparison | None] = [None] * len(pairs)
    rows = _SampleRows()
    for position, pair in enumerate(pairs):
        if pair.min_effect < 0:
            raise ValueError("the minimum effect cannot be negative")
        base_values, cont_values = pair.baseline, pair.contender
        # _size, inlined for the usual lists.
        n_base = len(base_values) if type(base_values) is list else _size(base_values)
        n_cont = len(cont_values) if type(cont_values) is list else _size(cont_values)
        if n_base >= 0 and n_cont >= 0 and _reachable(n_base, n_cont, alpha):
            rows.positions.append(position)
            rows.pairs.append(pair)
            rows.base.append(base_values)
            rows.cont.append(cont_values)
            rows.n_base.append(n_base)
            rows.n_cont.append(n_cont)
            continue
        base = np.asarray(pair.baseline, dtype=float).reshape(-1)
        cont = np.asarray(pair.contender, dtype=float).reshape(-1)
        _check_finite(base, cont)
        if _reachable(base.size, cont.size, alpha):
            rows.add(position, pair, base, cont, base.size, cont.size)
        else:
            out[position] = _without_enough_samples(pair, base, cont, alpha)
    for position, comparison in zip(rows.positions, _from_sample_rows(rows, alpha), strict=True):
        out[position] = comparison
    return [comparison for comparison in out if comparison is not None]


@functools.cache
def _reachable(n_base: int, n_cont: int, alpha: float) -> bool:
    return smallest_mann_whitney_p(n_base, n_cont) < alpha


class _SampleRows:
    """The pairs of a batch compared from samples, as columns."""

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.pairs: list[SamplePair] = []
        self.base: list[Any] = []
        self.cont: list[Any] = []
        self.n_base: list[int] = []
        self.n_cont: list[int] = []

    def add(
        self, position: int, pair: SamplePair, base: Any, cont: Any, n_base: int, n_cont: int
    ) -> None:
        self.positions.append(position)
        self.pairs.append(pair)
        self.base.append(base)
        self.cont.append(cont)
        self.n_base.append(n_base)
        self.n_cont.append(n_cont)


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


# Sizes that fewer pairs than this share are padded into a size class (the next of
# _SIZE_CLASSES, or a multiple of 128 beyond it) and computed with the other pairs of the class.
_EXACT_GROUP = 64
_SIZE_CLASSES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
# Bisection steps narrowing the band of ratios that holds a quantile (_ratio_quantile), while
# its widest row holds more than _NARROW_ENOUGH ratios.
_NARROWING_STEPS = 4
_NARROW_ENOUGH = 24


def _size_class(n: int) -> int:
    for size in _SIZE_CLASSES:
        if n <= size:
            return size
    return -(-n // 128) * 128


def _new(cls: type, values: dict[str, Any]) -> Any:
    """An instance of a frozen dataclass from all its field values, without its ``__init__``.

    The generated ``__init__`` sets every field through ``object.__setattr__``; filling the
    instance's ``__dict__`` makes the same object (equal, same hash and repr) about five
    times faster, which counts when a comparison of two runs makes tens of thousands (the
    loops of _from_sample_rows and _compare_runs do the same inline).
    """
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


class _Side:
    """One side of the sample rows, stored per sample size: sorted rows, medians, notes."""

    def __init__(self, name: str, values: list[Any], sizes: list[int]) -> None:
        count = len(sizes)
        by_size: dict[int, list[int]] = {}
        for index, n in enumerate(sizes):
            by_size.setdefault(n, []).append(index)
        self.sizes = np.array(sizes, dtype=np.intp)
        self.medians = np.empty(count)
        self.notes: list[list[str]] = [[] for _ in range(count)]
        self.where = np.empty(count, dtype=np.intp)
        self.ordered: dict[int, np.ndarray] = {}
        self.raw: dict[int, np.ndarray] = {}
        for n, indices in by_size.items():
            raw = np.array([values[i] for i in indices], dtype=float).reshape(len(indices), n)
            if not np.isfinite(raw).all():
                raise ValueError("samples must be finite numbers")
            ordered = np.sort(raw, axis=1)
            rows = np.array(indices, dtype=np.intp)
            self.where[rows] = np.arange(len(indices))
            self.ordered[n] = ordered
            self.raw[n] = raw
            # np.median's own last step: the mean of the middle slice of the partitioned rows.
            half = n // 2
            self.medians[rows] = np.mean(ordered[:, half - 1 + n % 2 : half + 1], axis=1)
            self._add_notes(name, raw, ordered, indices)

    def _add_notes(
        self, side: str, raw: np.ndarray, ordered: np.ndarray, indices: list[int]
    ) -> None:
        """The warnings perffarm.analysis.statistics gives, for rows of one size."""
        n = raw.shape[1]
        notes = [self.notes[i] for i in indices]
        if n < FEW_SAMPLES:
            text = f"{side}: only {n} samples; the interval is rough"
            for row_notes in notes:
                row_notes.append(text)
        if n >= 2:
            means = raw.mean(axis=1)
            stdevs = raw.std(axis=1, ddof=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                cvs = stdevs / np.abs(means)
            for row in np.flatnonzero((means != 0.0) & (cvs >= UNSTABLE_CV)).tolist():
                notes[row].append(
                    f"{side}: unstable: the coefficient of variation is {cvs[row]:.0%} "
                    f"(over {UNSTABLE_CV:.0%}); the machine may be busy or the benchmark too short"
                )
        lows, highs = ordered[:, 0], ordered[:, -1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            spread = (lows > 0) & (highs / lows > 2)
        for row in np.flatnonzero(spread).tolist():
            notes[row].append(f"{side}: the slowest sample is more than twice the fastest")

    def raw_rows(self, members: np.ndarray) -> np.ndarray:
        """The rows of ``members`` (all of one size) as given, not sorted."""
        return self.raw[int(self.sizes[members[0]])][self.where[members]]

    def rows(self, members: np.ndarray, width: int) -> np.ndarray:
        """The sorted rows of ``members``, padded with +inf to ``width`` columns."""
        sizes = self.sizes[members]
        first = int(sizes[0])
        if first == width and (sizes == first).all():
            return self.ordered[first][self.where[members]]
        out = np.full((members.size, width), np.inf)
        for n in np.unique(sizes).tolist():
            chosen = np.flatnonzero(sizes == n)
            out[chosen, :n] = self.ordered[n][self.where[members[chosen]]]
        return out


def _from_sample_rows(rows: _SampleRows, alpha: float) -> list[Comparison]:
    """The comparisons of every pair with enough samples, in the order of ``rows``."""
    count = len(rows.pairs)
    if not count:
        return []
    base = _Side("baseline", rows.base, rows.n_base)
    cont = _Side("contender", rows.cont, rows.n_cont)
    level = 1 - alpha
    p_values, u = np.empty(count), np.empty(count)
    hodges_lehmann, lows, highs = np.empty(count), np.empty(count), np.empty(count)
    sized: dict[tuple[int, int], int] = {}
    for key in zip(rows.n_base, rows.n_cont, strict=True):
        sized[key] = sized.get(key, 0) + 1
    groups: dict[tuple[int, int], list[int]] = {}
    for index, key in enumerate(zip(rows.n_base, rows.n_cont, strict=True)):
        if sized[key] < _EXACT_GROUP:
            key = (_size_class(key[0]), _size_class(key[1]))
        groups.setdefault(key, []).append(index)
    for indices in groups.values():
        members = np.array(indices, dtype=np.intp)
        n_base, n_cont = base.sizes[members], cont.sizes[members]
        b = base.rows(members, int(n_base.max()))
        c = cont.rows(members, int(n_cont.max()))
        p_values[members], u[members] = _mann_whitney_padded(b, c, n_base, n_cont)
        hodges_lehmann[members] = _hodges_lehmann_padded(b, c, n_base, n_cont)
        lows[members], highs[members] = _ratio_ci_padded(
            b,
            c,
            n_base,
            n_cont,
            level,
            lambda chosen, m=members: (base.raw_rows(m[chosen]), cont.raw_rows(m[chosen])),
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        cliffs = 2.0 * u / (base.sizes * cont.sizes) - 1.0
    columns = zip(
        rows.pairs,
        base.notes,
        cont.notes,
        base.sizes.tolist(),
        cont.sizes.tolist(),
        base.medians.tolist(),
        cont.medians.tolist(),
        p_values.tolist(),
        cliffs.tolist(),
        hodges_lehmann.tolist(),
        lows.tolist(),
        highs.tolist(),
        strict=True,
    )
    out = []
    new = object.__new__
    unchanged, better, worse = Verdict.UNCHANGED, Verdict.FASTER, Verdict.SLOWER
    lower = Direction.LOWER
    for pair, b_notes, c_notes, n_b, n_c, base_median, cont_median, p, cliff, hl, lo, hi in columns:
        direction = pair.direction
        if direction.__class__ is not Direction:
            direction = Direction(direction)
        notes = b_notes + c_notes
        ci = None
        if base_median <= 0.0:  # _ratio: no ratio
            ratio = None
            notes.append("the baseline median is not positive: no ratio, no verdict")
            verdict = Verdict.UNKNOWN
        else:
            ratio = cont_median / base_median
            ci = (lo, hi)
            # _decide, inlined (p is a number here; a NaN end is an undefined interval).
            if lo != lo or hi != hi:
                verdict = Verdict.UNKNOWN
            elif p >= alpha:
                verdict = unchanged
            elif lo > 1.0 + pair.min_effect:
                verdict = worse if direction is lower else better
            elif hi < 1.0 - pair.min_effect:
                verdict = better if direction is lower else worse
            else:
                verdict = unchanged
        if verdict is unchanged and p < alpha:
            notes.append(
                f"significant (p={p:.2g}) but the interval does not clear the minimum effect "
                f"of {pair.min_effect:.1%}"
            )
        comparison = new(Comparison)
        comparison.__dict__.update(
            {
                "verdict": verdict,
                "basis": "samples",
                "direction": direction,
                "n_baseline": n_b,
                "n_contender": n_c,
                "baseline": base_median,
                "contender": cont_median,
                "ratio": ratio,
                "ratio_ci": ci,
                "ci_level": level,
                "p_value": p,
                "cliffs_delta": cliff,
                "hodges_lehmann": hl,
                "min_effect": pair.min_effect,
                "alpha": alpha,
                "notes": notes,
            }
        )
        out.append(comparison)
    return out


def _mann_whitney_padded(
    base: np.ndarray, cont: np.ndarray, n_base: np.ndarray, n_cont: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(two-sided p, U) of sorted rows padded with +inf, ``n_base`` and ``n_cont`` per row.

    U is the contender's rank sum (mid-ranks for ties) less its least value; it counts the
    (contender, baseline) pairs where the contender is larger, ties half, exactly as the
    pairwise count does (both are half-integers, exact in floats). Identical constant sides
    are simply no evidence.
    """
    rows, width = cont.shape[0], cont.shape[1] + base.shape[1]
    combined = np.concatenate((cont, base), axis=1)
    order = np.argsort(combined, axis=1)
    values = np.take_along_axis(combined, order, axis=1)
    new_group = np.ones((rows, width), dtype=bool)
    new_group[:, 1:] = values[:, 1:] != values[:, :-1]
    positions = np.broadcast_to(np.arange(width), (rows, width))
    starts = np.maximum.accumulate(np.where(new_group, positions, 0), axis=1)
    last = np.ones((rows, width), dtype=bool)
    last[:, :-1] = new_group[:, 1:]
    ends = np.minimum.accumulate(np.where(last, positions, width)[:, ::-1], axis=1)[:, ::-1]
    valid = values != np.inf
    twice_ranks = np.where(valid & (order < cont.shape[1]), starts + ends, 0).sum(axis=1)
    u = (twice_ranks - n_cont * (n_cont - 1)) * 0.5
    sizes = ends - starts + 1
    tie_sums = np.where(valid, sizes * sizes - 1, 0).sum(axis=1).astype(float)
    total = n_cont + n_base
    p = np.empty(rows)
    exact = (tie_sums == 0) & (np.maximum(n_cont, n_base) <= EXACT_LIMIT)
    if exact.any():
        keys, inverse = np.unique(
            n_cont[exact] * (EXACT_LIMIT + 1) + n_base[exact], return_inverse=True
        )
        tables = [_exact_u_cdf(*divmod(int(key), EXACT_LIMIT + 1)) for key in keys.tolist()]
        offsets = np.cumsum([0] + [table.size for table in tables[:-1]])[inverse]
        cdf = np.concatenate(tables)
        k = np.rint(u[exact]).astype(np.intp)
        lower = cdf[offsets + k]
        upper = 1.0 - np.where(k > 0, cdf[offsets + np.maximum(k - 1, 0)], 0.0)
        p[exact] = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    approx = ~exact
    if approx.any():
        n_c, n_b, n = n_cont[approx], n_base[approx], total[approx]
        tie_term = tie_sums[approx] / (n * (n - 1))
        variance = n_c * n_b / 12.0 * ((n + 1) - tie_term)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.maximum(np.abs(u[approx] - n_c * n_b / 2.0) - 0.5, 0.0) / np.sqrt(variance)
            p[approx] = np.where(variance > 0.0, np.minimum(1.0, 2.0 * special.ndtr(-z)), 1.0)
    every = np.arange(rows)
    constant = (
        (base[:, 0] == base[every, n_base - 1])
        & (cont[:, 0] == cont[every, n_cont - 1])
        & (base[:, 0] == cont[:, 0])
    )
    p[constant] = 1.0
    u[constant] = (n_base * n_cont / 2.0)[constant]
    return p, u


def _hodges_lehmann_padded(
    base: np.ndarray, cont: np.ndarray, n_base: np.ndarray, n_cont: np.ndarray
) -> np.ndarray:
    """Median of all contender - baseline differences, per row (chunked to bound memory).

    Rows of one size are partitioned as ``np.median`` does; padded rows (baseline pads
    -inf, contender pads +inf, so every pad difference is +inf) are sorted and read at their
    own middle. The median is the mean of the middle slice, as ``np.median`` takes it.
    """
    rows, width = base.shape[0], base.shape[1] * cont.shape[1]
    uniform = bool((n_base == base.shape[1]).all() and (n_cont == cont.shape[1]).all())
    if not uniform:
        base = np.where(np.arange(base.shape[1]) < n_base[:, None], base, -np.inf)
    out = np.empty(rows)
    step = _chunk(width)
    for start in range(0, rows, step):
        b, c = base[start : start + step], cont[start : start + step]
        with np.errstate(over="ignore", invalid="ignore"):
            diffs = (c[:, :, None] - b[:, None, :]).reshape(b.shape[0], width)
        if uniform:
            half = width // 2
            kth = [half - 1, half] if width % 2 == 0 else [half]
            part = np.partition(diffs, kth, axis=1)
            with np.errstate(over="ignore", invalid="ignore"):
                out[start : start + step] = np.mean(
                    part[:, half - 1 + width % 2 : half + 1], axis=1
                )
            continue
        diffs.sort(axis=1)
        counts = (n_base * n_cont)[start : start + step]
        middle = np.take_along_axis(
            diffs, np.stack(((counts - 1) // 2, counts // 2), axis=1), axis=1
        )
        odd = counts % 2 == 1
        with np.errstate(over="ignore", invalid="ignore"):
            medians = np.mean(middle, axis=1)
            medians[odd] = np.mean(middle[odd, :1], axis=1)
        out[start : start + step] = medians
    return out


def _chunk(width: int) -> int:
    """Rows per chunk so that a (rows, width) array stays around a million elements."""
    return max(1, (1 << 20) // max(width, 1))


# Up to this many samples a side (and no ties) the exact distribution of U is used.
EXACT_LIMIT = 25


def mann_whitney(baseline: Sequence[float], contender: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of one pair: (p-value, U of the contender).

    U counts the (contender, baseline) pairs where the contender is larger, ties half.
    Up to EXACT_LIMIT samples a side without ties the p-value is exact (the distribution
    of U, a cached recurrence); otherwise the normal approximation with the tie and the
    continuity corrections. The very computation ``compare_batch`` makes for each row.
    """
    base = np.sort(np.asarray(baseline, dtype=float).reshape(1, -1), axis=1)
    cont = np.sort(np.asarray(contender, dtype=float).reshape(1, -1), axis=1)
    if not base.size or not cont.size:
        raise ValueError("the Mann-Whitney test needs a sample on each side")
    sizes = (np.array([base.shape[1]], dtype=np.intp), np.array([cont.shape[1]], dtype=np.intp))
    p, u = _mann_whitney_padded(base, cont, *sizes)
    return float(p[0]), float(u[0])


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
    raw_base, raw_cont = np.asarray(base, dtype=float), np.asarray(cont, dtype=float)
    rows = raw_base.shape[0]
    n_base = np.full(rows, raw_base.shape[1], dtype=np.intp)
    n_cont = np.full(rows, raw_cont.shape[1], dtype=np.intp)
    return _ratio_ci_padded(
        np.sort(raw_base, axis=1),
        np.sort(raw_cont, axis=1),
        n_base,
        n_cont,
        level,
        lambda chosen: (raw_base[chosen], raw_cont[chosen]),
    )


def _exact_ratio_ci_sorted(
    base: np.ndarray, cont: np.ndarray, *, level: float = 1 - DEFAULT_ALPHA
) -> tuple[np.ndarray, np.ndarray]:
    """The interval by definition: every ratio of a row sorted, cumulative weights read.

    The reference for ``_ratio_ci_padded`` (which must give exactly its answers), and the
    path of the rows it does not take: a sample that is zero or negative, or a tail too
    close to call in floats.
    """
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
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
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


def _ratio_ci_padded(
    base: np.ndarray,
    cont: np.ndarray,
    n_base: np.ndarray,
    n_cont: np.ndarray,
    level: float,
    raw: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """``_exact_ratio_ci_sorted`` of sorted rows padded with +inf, without sorting the ratios.

    Both ends are found by ``_ratio_quantile`` for rows of positive samples: the low end as
    the quantile of contender / baseline, the high end as the same quantile of -ratio, with
    the contender negated and both sides reversed. Rows with a zero or negative sample, and
    the rare rows where the float sums cannot tell for sure which ratio reaches the tail, are
    computed by ``_exact_ratio_ci_sorted`` from their samples as given (``raw(rows)``, rows of
    one size): with both 0.0 and -0.0 among the samples, which zero an end is depends on the
    order the sort starts from.
    """
    rows = base.shape[0]
    lows, highs = np.full(rows, np.nan), np.full(rows, np.nan)
    reach = (1 - level) / 2 * (1 - 1e-9)
    fast = np.flatnonzero((base[:, 0] > 0) & (cont[:, 0] > 0))
    slow = np.ones(rows, dtype=bool)
    if fast.size:
        b, c, n_b, n_c = base[fast], cont[fast], n_base[fast], n_cont[fast]
        width_c, width_b = c.shape[1], b.shape[1]
        inside_c = np.arange(width_c) < n_c[:, None]
        inside_b = np.arange(width_b) < n_b[:, None]
        upper_k, lower_k = _corner_rows(n_c, n_b, width_b, reach, False)
        upper_r, lower_r = _corner_rows(n_c, n_b, width_b, reach, True)
        value, certain = _ratio_quantile(
            np.concatenate((c, np.where(inside_c, -_reversed(c, n_c), np.inf))),
            np.concatenate((b, np.where(inside_b, _reversed(b, n_b), 1.0))),
            np.concatenate((_weight_rows(n_c, width_c, False), _weight_rows(n_c, width_c, True))),
            np.concatenate((_weight_rows(n_b, width_b, False), _weight_rows(n_b, width_b, True))),
            np.concatenate((upper_k, upper_r)),
            np.concatenate((lower_k, lower_r)),
            np.concatenate((n_c, n_c)),
            np.concatenate((n_b, n_b)),
            reach,
        )
        ok = certain[: fast.size] & certain[fast.size :]
        lows[fast[ok]] = value[: fast.size][ok]
        highs[fast[ok]] = -value[fast.size :][ok]
        slow[fast[ok]] = False
    if slow.any():
        chosen = np.flatnonzero(slow)
        sizes = n_base[chosen] * (1 << 32) + n_cont[chosen]
        for key in np.unique(sizes).tolist():
            group = chosen[sizes == key]
            lows[group], highs[group] = _exact_ratio_ci_sorted(*raw(group), level=level)
    return lows, highs


def _reversed(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each row's first ``sizes`` values in reverse order (what follows them: unspecified)."""
    index = np.maximum(sizes[:, None] - 1 - np.arange(values.shape[1]), 0)
    return np.take_along_axis(values, index, axis=1)


@functools.cache
def _median_weight_table(n: int, width: int, reverse: bool) -> np.ndarray:
    weights = bootstrap_median_weights(n)
    out = np.zeros(width)
    out[:n] = weights[::-1] if reverse else weights
    return out


def _weight_rows(sizes: np.ndarray, width: int, reverse: bool) -> np.ndarray:
    """Bootstrap median weights per row, zero beyond each row's size."""
    first = int(sizes[0])
    if (sizes == first).all():
        return np.broadcast_to(_median_weight_table(first, width, reverse), (sizes.size, width))
    keys, inverse = np.unique(sizes, return_inverse=True)
    table = np.stack([_median_weight_table(int(n), width, reverse) for n in keys.tolist()])
    return table[inverse]


@functools.cache
def _corner_table(
    n_x: int, n_y: int, width_y: int, reach: float, reverse: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per column l of the ratio matrix, the rows bounding the quantile from its corners.

    With x and y sorted, x_k / y_l grows with k and shrinks with l, so the pairs k' <= k,
    l' >= l are all at most x_k / y_l: if their weight reaches ``reach``, x_k / y_l is an
    upper bound of the quantile. ``upper[l]`` is the smallest such k (``n_x``: none).
    Likewise the pairs k' >= k, l' <= l are all at least x_k / y_l: if their weight is above
    1 - ``reach``, the quantile is at least x_k / y_l; ``lower[l]`` is the largest such k
    (-1: none). Bounds only narrow the search; the answer is checked exactly.
    """
    wx = _median_weight_table(n_x, n_x, reverse)
    wy = _median_weight_table(n_y, n_y, reverse)
    x_below, x_above = np.cumsum(wx), np.cumsum(wx[::-1])[::-1]
    y_below, y_above = np.cumsum(wy), np.cumsum(wy[::-1])[::-1]
    upper = np.full(width_y, n_x, dtype=np.intp)
    lower = np.full(width_y, -1, dtype=np.intp)
    for column in range(n_y):
        upper[column] = int(np.sum(x_below * y_above[column] < reach))
        lower[column] = int(np.sum(x_above * y_below[column] > 1 - reach)) - 1
    return upper, lower


def _corner_rows(
    n_x: np.ndarray, n_y: np.ndarray, width_y: int, reach: float, reverse: bool
) -> tuple[np.ndarray, np.ndarray]:
    first = (int(n_x[0]), int(n_y[0]))
    if (n_x == first[0]).all() and (n_y == first[1]).all():
        upper, lower = _corner_table(*first, width_y, reach, reverse)
        shape = (n_x.size, width_y)
        return np.broadcast_to(upper, shape), np.broadcast_to(lower, shape)
    keys, inverse = np.unique(n_x * (1 << 32) + n_y, return_inverse=True)
    tables = [_corner_table(*divmod(k, 1 << 32), width_y, reach, reverse) for k in keys.tolist()]
    return np.stack([t[0] for t in tables])[inverse], np.stack([t[1] for t in tables])[inverse]


def _ratio_quantile(
    x: np.ndarray,
    y: np.ndarray,
    wx: np.ndarray,
    wy: np.ndarray,
    upper_k: np.ndarray,
    lower_k: np.ndarray,
    n_x: np.ndarray,
    n_y: np.ndarray,
    reach: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the smallest ratio x_k / y_l whose cumulative weight reaches ``reach``.

    ``x`` (rows, P) is sorted ascending, ``y`` (rows, Q) positive and sorted so that x_k / y_l
    grows with k and shrinks with l; each row uses its first ``n_x`` and ``n_y`` values, the
    pair (k, l) weighing ``wx[k] * wy[l]``; ``upper_k`` and ``lower_k`` are the rows'
    ``_corner_table``.

    Without sorting the n_x · n_y ratios: the corner bounds give a band of values holding
    the quantile; per column l a binary search counts the ratios below the band and within
    it (ratios computed as x_k / y_l, the same floats the full sort compares); a few
    bisection steps narrow the band, and only the ratios left in it are sorted. The answer v
    is certain when the weight of the ratios below v is under ``reach`` and that of the
    ratios up to v at or above it, both by more than the rounding of the sums (ours and the
    full sort's cumulative sum): the full sort then reads the same v. Returns (values,
    certain); rows not certain must be computed otherwise.
    """
    rows, width_x = x.shape
    width_y = y.shape[1]
    row = np.arange(rows)[:, None]
    row_start = row * width_x
    flat_x = x.ravel()
    columns = np.arange(width_y) < n_y[:, None]
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        ceiling = np.where(
            columns & (upper_k < n_x[:, None]),
            np.take(flat_x, row_start + np.minimum(upper_k, width_x - 1)) / y,
            np.inf,
        ).min(axis=1)
        floor = np.where(
            columns & (lower_k >= 0),
            np.take(flat_x, row_start + np.maximum(lower_k, 0)) / y,
            -np.inf,
        ).max(axis=1)

    def count(threshold: np.ndarray, strict: bool, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Per (row, column): low + how many x_k / y_l, k in [low, high) (flat indices of x),
        are < (strict) or <= threshold. A uniform binary search: steps of 2^j down to 1."""
        threshold = threshold[:, None]
        span = int((high - low).max()) if low.size else 0
        position = low
        step = 1 << span.bit_length()
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            while step > 1:
                step >>= 1
                # Clamped at high: the ratios are sorted, so where x[high - 1] / y fits
                # all of [low, high) do.
                candidate = np.minimum(position + step, high)
                value = np.take(before_x, candidate) / y
                fits = (value < threshold) if strict else (value <= threshold)
                position = np.where(fits, candidate, position)
        return position

    # before_x[i] = flat_x[i - 1]: the last ratio of a count of i.
    before_x = np.concatenate((flat_x[:1], flat_x))
    limit = row_start + np.where(columns, n_x[:, None], 0)
    # With floor <= ceiling the corners bound the counts too: x[upper_k] / y >= ceiling is
    # not below the floor, x[lower_k] / y <= floor is not above the ceiling.
    ordered = (floor <= ceiling)[:, None]
    start = count(
        floor,
        True,
        np.broadcast_to(row_start, (rows, width_y)),
        np.where(ordered, np.minimum(limit, row_start + upper_k), limit),
    )
    stop = count(
        ceiling,
        False,
        np.where(ordered, np.minimum(np.maximum(start, row_start + lower_k + 1), limit), start),
        limit,
    )
    # Cumulative weights of x: x_before[row, k] = wx[row, :k].sum(), flat index flat_k + row.
    x_before = np.zeros((rows, width_x + 1))
    np.cumsum(wx, axis=1, out=x_before[:, 1:])
    flat_before = x_before.ravel()
    weight_below = np.sum(wy * np.take(flat_before, start + row), axis=1)
    # Narrow the band by bisection while it is wide: the ratios up to its middle value
    # counted, the half holding the quantile kept (an unbounded band is left as it is).
    for _ in range(_NARROWING_STEPS):
        if int((stop - start).sum(axis=1).max()) <= _NARROW_ENOUGH:
            break
        with np.errstate(over="ignore", invalid="ignore"):
            pivot = floor + (ceiling - floor) * 0.5
        pivot = np.where(np.isfinite(pivot), pivot, ceiling)
        middle = count(pivot, False, start, stop)
        weight = np.sum(wy * np.take(flat_before, middle + row), axis=1)
        reached = weight >= reach
        stop = np.where(reached[:, None], middle, stop)
        ceiling = np.where(reached, pivot, ceiling)
        start = np.where(reached[:, None], start, middle)
        floor = np.where(reached, floor, pivot)
        weight_below = np.where(reached, weight_below, weight)
    sizes = stop - start
    per_row = sizes.sum(axis=1)
    widest = max(int(per_row.max()), 1)
    values = np.full((rows, widest), np.inf)
    weights = np.zeros((rows, widest))
    flat_sizes = sizes.ravel()
    total = int(per_row.sum())
    if total:
        run = np.repeat(np.arange(rows * width_y), flat_sizes)
        position = np.arange(total)
        flat_k = start.ravel()[run] + (position - (np.cumsum(flat_sizes) - flat_sizes)[run])
        owner = run // width_y
        slot = position - (np.cumsum(per_row) - per_row)[owner]
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            values[owner, slot] = flat_x[flat_k] / y.ravel()[run]
        weights[owner, slot] = np.ravel(wx)[flat_k] * np.ravel(wy)[run]
    order = np.argsort(values, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    weights = np.take_along_axis(weights, order, axis=1)
    cumulative = weight_below[:, None] + np.cumsum(weights, axis=1)
    every = row[:, 0]
    answer = values[every, np.argmax(cumulative >= reach, axis=1)]
    before = np.sum(values < answer[:, None], axis=1)
    through = np.sum(values <= answer[:, None], axis=1)
    below_answer = np.where(before > 0, cumulative[every, np.maximum(before - 1, 0)], weight_below)
    up_to_answer = cumulative[every, np.maximum(through - 1, 0)]
    # Rounding of either computation: at most a few units of 2^-53 per summed term.
    margin = 4.0 * (width_x * width_y + width_x + width_y + 4) * 2.0**-53
    certain = (
        (cumulative[:, -1] >= reach)
        & (below_answer < reach - margin)
        & (up_to_answer >= reach + margin)
    )
    return answer, certain


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
    # The same params in the same order, with values of the same types, have the same text:
    # a cheaper key in front of the sorted marker of _canonical (which it only shortcuts).
    quick: dict[Any, str] = {}
    for result in results:
        params = result.params
        values = tuple(params.values())
        try:
            shortcut = (tuple(params), values, tuple(map(type, values)))
            text = quick.get(shortcut)
        except TypeError:  # unhashable values
            shortcut = text = None
        if text is None:
            text = _canonical(params, canonical)
            if shortcut is not None:
                quick[shortcut] = text
        key = (result.benchmark, text, result.metric)
        found = index.get(key)
        if found is None:
            index[key] = [result]
        else:
            found.append(result)
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
    with collector_paused():
        return _compare_runs(baseline, contender, overrides, min_effect=min_effect, alpha=alpha)


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
    new = object.__new__
    for key in keys:
        base_results = base_index.get(key)
        cont_results = cont_index.get(key)
        first = (cont_results or base_results or [])[0]
        override = _override_for(first.benchmark, overrides) if overrides else None
        entry = {
            "benchmark": first.benchmark,
            "params": dict(first.params),
            "metric": first.metric,
            "unit": first.unit,
        }
        if override is not None and override.ignore:
            comparisons.append(
                _new(ResultComparison, {**entry, "presence": Presence.IGNORED, "comparison": None})
            )
            continue
        if not base_results or not cont_results:
            presence = Presence.CONTENDER_ONLY if cont_results else Presence.BASELINE_ONLY
            comparisons.append(
                _new(ResultComparison, {**entry, "presence": presence, "comparison": None})
            )
            continue
        direction = (
            override.direction
            if override is not None and override.direction is not None
            else first.direction
        )
        base_first, cont_first = base_results[0], cont_results[0]
        if len(base_results) == 1 and len(cont_results) == 1:  # _pooled, inlined
            base_samples, base_summary = base_first.samples, base_first.summary
            cont_samples, cont_summary = cont_first.samples, cont_first.summary
        else:
            base_samples, base_summary = _pooled(base_results)
            cont_samples, cont_summary = _pooled(cont_results)
        pair = new(SamplePair)
        pair.__dict__.update(
            {
                "baseline": base_samples,
                "contender": cont_samples,
                "direction": direction,
                "min_effect": (
                    override.min_effect
                    if override is not None and override.min_effect is not None
                    else min_effect
                ),
                "baseline_summary": base_summary,
                "contender_summary": cont_summary,
            }
        )
        pairs.append(pair)
        extra = []
        if base_first.direction != cont_first.direction:
            extra.append(
                f"the runs disagree on the direction; compared as {direction.value} is better"
            )
        if base_first.unit != cont_first.unit:
            extra.append(
                f"the units differ ({base_first.unit} and {cont_first.unit}): "
                "the ratio may mean nothing"
            )
        if len(base_results) > 1 or len(cont_results) > 1:
            extra.append("measured more than once in a run: samples pooled")
        compared.append((len(comparisons), entry, extra))
        comparisons.append(None)
    both = Presence.BOTH
    for (position, entry, extra), comparison in zip(
        compared, compare_batch(pairs, alpha=alpha), strict=True
    ):
        if extra:
            comparison = _with_notes(comparison, extra)
        entry["presence"] = both
        entry["comparison"] = comparison
        item = new(ResultComparison)
        item.__dict__.update(entry)
        comparisons[position] = item
    return [item for item in comparisons if item is not None]


def _with_notes(comparison: Comparison, notes: list[str]) -> Comparison:
    return replace(comparison, notes=[*comparison.notes, *notes])


def series_key_text(benchmark: str, params: Mapping[str, Any], metric: str) -> str:
    """A stable one-line key, e.g. for JUnit test names or JSON maps."""
    return f"{benchmark}|{canonical_params(dict(params))}|{metric}"
