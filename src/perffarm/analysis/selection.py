"""A weighted order statistic of the n1 · n2 values ``op(x_k, y_l)`` of two samples, found
without forming them: the median of all differences (Hodges-Lehmann) and the quantiles of
the bootstrap distribution of a ratio of medians, when the samples are so large that the
n1 · n2 values would not fit in memory (100,000 a side: 10^10 values).

Each column l (one value of ``y``) is sorted by construction, ``op(x_k, y_l)`` not
decreasing with k; so how many values of a column are at most v, and their weight, is a
binary search. The answer is narrowed by pivots drawn from the values still in question
(two per round, around where a random sample of them puts the answer), until few enough
are left to list; among those, the answer is found by the same weighing. Every decision
compares the weight up to a value, computed one way (``_Weighing.up_to``), with the
target, so the answer does not depend on the pivots drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Op = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Values still in question, at most, before they are listed; values drawn per round.
_LIST_AT_MOST = 1 << 14
_SAMPLE = 8192


class _Weighing:
    """Counts and weights of the values up to a threshold, per column, within bounds."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        op: Op,
        x_weight_before: np.ndarray,
        y_weight: np.ndarray,
    ) -> None:
        self.x, self.y, self.op = x, y, op
        self.x_weight_before = x_weight_before
        self.y_weight = y_weight

    def count(self, value: float, strict: bool, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Per column: ``low`` + how many k in [low, high) have op(x_k, y_l) below ``value``
        (``strict``) or at most ``value``. A uniform binary search over all columns."""
        position = low.copy()
        span = int((high - low).max()) if low.size else 0
        step = 1 << span.bit_length()
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            while step > 1:
                step >>= 1
                candidate = np.minimum(position + step, high)
                last = self.op(self.x[np.maximum(candidate - 1, 0)], self.y)
                fits = (last < value) if strict else (last <= value)
                position = np.where(fits & (candidate > position), candidate, position)
        return position

    def weight(self, counts: np.ndarray) -> float:
        """The weight of the first ``counts`` values of every column."""
        return float(np.sum(self.y_weight * self.x_weight_before[counts]))

    def up_to(self, value: float, strict: bool, low: np.ndarray, high: np.ndarray) -> float:
        return self.weight(self.count(value, strict, low, high))


def weighted_select(
    x: np.ndarray,
    y: np.ndarray,
    op: Op,
    x_weight: np.ndarray,
    y_weight: np.ndarray,
    reach: float,
    *,
    seed: int = 0,
) -> float:
    """The smallest value v among op(x_k, y_l) whose weight up to it, the sum of
    ``x_weight[k] * y_weight[l]`` over the values at most v, reaches ``reach``.

    ``x`` must make op(x_k, y_l) non-decreasing in k for every l (``x`` sorted, ``op``
    monotone in its first argument), and no value may be NaN (ValueError). With unit
    weights and ``reach`` = r + 1 this is the r-th smallest value (0-based), exactly. When
    no value reaches ``reach`` (rounding of the weights' sum), the largest value.
    """
    x_before = np.concatenate(([0.0], np.cumsum(x_weight)))
    weighing = _Weighing(x, y, op, x_before, np.asarray(y_weight, dtype=float))
    low = np.zeros(y.size, dtype=np.intp)
    high = np.full(y.size, x.size, dtype=np.intp)
    rng = np.random.default_rng(seed)
    while True:
        sizes = high - low
        total = int(sizes.sum())
        if total <= _LIST_AT_MOST:
            break
        below = weighing.weight(low)
        band = weighing.weight(high) - below
        pivots = _pivots(
            weighing, low, sizes, total, (reach - below) / band if band > 0 else 0.5, rng
        )
        for pivot in pivots:
            if pivot != pivot:
                raise ValueError("weighted_select: a value is NaN")
            below_pivot = weighing.count(pivot, True, low, high)
            if weighing.weight(below_pivot) >= reach:
                high = below_pivot  # the answer is below the pivot
                break
            through_pivot = weighing.count(pivot, False, low, high)
            if weighing.weight(through_pivot) >= reach:
                return pivot
            low = through_pivot  # the answer is above it
    return _among_the_rest(weighing, low, high, reach)


def _pivots(
    weighing: _Weighing,
    low: np.ndarray,
    sizes: np.ndarray,
    total: int,
    fraction: float,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Two values in question around where a random sample of them puts the answer."""
    ends = np.cumsum(sizes)
    picks = rng.integers(0, total, size=_SAMPLE)
    columns = np.searchsorted(ends, picks, side="right")
    rows = low[columns] + picks - (ends - sizes)[columns]
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        values = weighing.op(weighing.x[rows], weighing.y[columns])
        weights = (
            weighing.x_weight_before[rows + 1] - weighing.x_weight_before[rows]
        ) * weighing.y_weight[columns]
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights)
    if cumulative[-1] > 0:
        at = int(np.searchsorted(cumulative / cumulative[-1], min(max(fraction, 0.0), 1.0)))
    else:
        at = int(fraction * _SAMPLE)
    spread = 2 * int(np.sqrt(_SAMPLE)) + 1
    return (
        float(values[max(at - spread, 0)]),
        float(values[min(at + spread, _SAMPLE - 1)]),
    )


def _among_the_rest(weighing: _Weighing, low: np.ndarray, high: np.ndarray, reach: float) -> float:
    """The answer among the values still in question: listed, and searched by weighing."""
    sizes = high - low
    columns = np.repeat(np.arange(sizes.size), sizes)
    starts = np.cumsum(sizes) - sizes
    rows = low[columns] + np.arange(columns.size) - starts[columns]
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        values = np.unique(weighing.op(weighing.x[rows], weighing.y[columns]))
    first, last = 0, values.size - 1
    if last < 0:
        return float("nan")
    while first < last:
        middle = (first + last) // 2
        if weighing.up_to(float(values[middle]), False, low, high) >= reach:
            last = middle
        else:
            first = middle + 1
    return float(values[first])
