"""Comparing two sets of samples, one pair (``compare_samples``) or many at once
(``compare_batch``).

Pairs with enough samples for the Mann-Whitney test to reach ``alpha`` are compared from
their samples, as arrays: medians, the test, Hodges-Lehmann, the exact bootstrap interval of
the ratio of medians. When either side has too few samples (or none at all, as with tools
that report only a mean), the comparison falls back to the stored summaries
(``perffarm.analysis.welch``), with ``basis="summary"`` and a note saying so.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perffarm.analysis.bootstrap import LISTED_RATIOS, ratio_ci_rows
from perffarm.analysis.ranks import hodges_lehmann_rows, mann_whitney_rows, smallest_mann_whitney_p
from perffarm.analysis.verdict import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MIN_EFFECT,
    FEW_SAMPLES,
    UNSTABLE_CV,
    Comparison,
    Verdict,
    ratio_of,
)
from perffarm.analysis.welch import compare_summaries
from perffarm.model import Direction, Summary


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
        return compare_summaries(
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
        ratio=ratio_of(float(np.median(base)), float(np.median(cont)))
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


# Sizes that fewer pairs than this share are padded into a size class (the next of
# _SIZE_CLASSES, or a multiple of 128 beyond it) and computed with the other pairs of the class.
_EXACT_GROUP = 64
_SIZE_CLASSES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def _size_class(n: int) -> int:
    for size in _SIZE_CLASSES:
        if n <= size:
            return size
    return -(-n // 128) * 128


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


def _raw_rows(
    base: _Side, cont: _Side, members: np.ndarray, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The samples as given of the rows ``members[chosen]`` (for the full-sort fallback)."""
    return base.raw_rows(members[chosen]), cont.raw_rows(members[chosen])


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
        p_values[members], u[members] = mann_whitney_rows(b, c, n_base, n_cont)
        hodges_lehmann[members] = hodges_lehmann_rows(b, c, n_base, n_cont)
        lows[members], highs[members] = ratio_ci_rows(
            b,
            c,
            n_base,
            n_cont,
            level,
            functools.partial(_raw_rows, base, cont, members),
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
        if base_median <= 0.0:  # ratio_of: no ratio
            ratio = None
            notes.append("the baseline median is not positive: no ratio, no verdict")
            verdict = Verdict.UNKNOWN
        else:
            ratio = cont_median / base_median
            ci = (lo, hi)
            # decide, inlined (p is a number here; a NaN end is an undefined interval).
            if lo != lo or hi != hi:
                verdict = Verdict.UNKNOWN
                if n_b * n_c > LISTED_RATIOS:
                    notes.append(
                        f"no interval: a zero or negative sample among {n_b} x {n_c} samples "
                        "(too many ratios to sort), no verdict"
                    )
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
