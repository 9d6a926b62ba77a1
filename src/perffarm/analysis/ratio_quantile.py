"""The quantile of the bootstrap distribution of a ratio of medians, found without sorting
the n1 · n2 ratios (``ratio_quantile``); the reference that sorts them is
``perffarm.analysis.bootstrap.ratio_ci_sorted``.
"""

from __future__ import annotations

import functools

import numpy as np

from perffarm.analysis.median_weights import median_weight_table

# Bisection steps narrowing the band of ratios that holds a quantile (ratio_quantile), while
# its widest row holds more than _NARROW_ENOUGH ratios.
_NARROWING_STEPS = 4
_NARROW_ENOUGH = 24


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
    wx = median_weight_table(n_x, n_x, reverse)
    wy = median_weight_table(n_y, n_y, reverse)
    x_below, x_above = np.cumsum(wx), np.cumsum(wx[::-1])[::-1]
    y_below, y_above = np.cumsum(wy), np.cumsum(wy[::-1])[::-1]
    upper = np.full(width_y, n_x, dtype=np.intp)
    lower = np.full(width_y, -1, dtype=np.intp)
    for column in range(n_y):
        upper[column] = int(np.sum(x_below * y_above[column] < reach))
        lower[column] = int(np.sum(x_above * y_below[column] > 1 - reach)) - 1
    return upper, lower


def corner_rows(
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


def ratio_quantile(
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
