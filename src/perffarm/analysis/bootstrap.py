"""The exact bootstrap interval of the ratio of medians, contender / baseline.

The interval a percentile bootstrap with infinitely many resamples converges to, computed
without random numbers: each median's bootstrap distribution is known exactly
(``perffarm.analysis.median_weights``), and the quantiles of the ratio are found by
``perffarm.analysis.ratio_quantile``, or by sorting every ratio where that search cannot
certify its answer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from perffarm.analysis.median_weights import bootstrap_median_weights, weight_rows
from perffarm.analysis.ranks import rows_per_chunk
from perffarm.analysis.ratio_quantile import corner_rows, ratio_quantile
from perffarm.analysis.selection import weighted_select
from perffarm.analysis.verdict import DEFAULT_ALPHA

# Up to this many ratios a row the interval may sort them all (32 MB); beyond, it selects.
LISTED_RATIOS = 1 << 22


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
    return ratio_ci_rows(
        np.sort(raw_base, axis=1),
        np.sort(raw_cont, axis=1),
        n_base,
        n_cont,
        level,
        lambda chosen: (raw_base[chosen], raw_cont[chosen]),
    )


def ratio_ci_sorted(
    base: np.ndarray, cont: np.ndarray, *, level: float = 1 - DEFAULT_ALPHA
) -> tuple[np.ndarray, np.ndarray]:
    """The interval by definition: every ratio of a row sorted, cumulative weights read.

    The reference for ``ratio_ci_rows`` (which must give exactly its answers), and the
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
    step = rows_per_chunk(n_base * n_cont)
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


def ratio_ci_rows(
    base: np.ndarray,
    cont: np.ndarray,
    n_base: np.ndarray,
    n_cont: np.ndarray,
    level: float,
    raw: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """``ratio_ci_sorted`` of sorted rows padded with +inf, without sorting the ratios.

    Both ends are found by ``ratio_quantile`` for rows of positive samples: the low end as
    the quantile of contender / baseline, the high end as the same quantile of -ratio, with
    the contender negated and both sides reversed. Rows with a zero or negative sample, and
    the rare rows where the float sums cannot tell for sure which ratio reaches the tail, are
    computed by ``ratio_ci_sorted`` from their samples as given (``raw(rows)``, rows of
    one size): with both 0.0 and -0.0 among the samples, which zero an end is depends on the
    order the sort starts from.

    Rows of more than LISTED_RATIOS ratios are never listed: with positive samples both ends
    are selected (``_selected_ratio_ci``); with a zero or negative sample the interval is
    undefined (NaN ends: no verdict), the ratios being too many to sort.
    """
    rows = base.shape[0]
    lows, highs = np.full(rows, np.nan), np.full(rows, np.nan)
    reach = (1 - level) / 2 * (1 - 1e-9)
    positive = (base[:, 0] > 0) & (cont[:, 0] > 0)
    large = n_base * n_cont > LISTED_RATIOS
    for row in np.flatnonzero(large & positive).tolist():
        lows[row], highs[row] = _selected_ratio_ci(
            base[row, : n_base[row]], cont[row, : n_cont[row]], reach
        )
    fast = np.flatnonzero(positive & ~large)
    slow = ~large
    if fast.size:
        b, c, n_b, n_c = base[fast], cont[fast], n_base[fast], n_cont[fast]
        width_c, width_b = c.shape[1], b.shape[1]
        inside_c = np.arange(width_c) < n_c[:, None]
        inside_b = np.arange(width_b) < n_b[:, None]
        upper_k, lower_k = corner_rows(n_c, n_b, width_b, reach, False)
        upper_r, lower_r = corner_rows(n_c, n_b, width_b, reach, True)
        value, certain = ratio_quantile(
            np.concatenate((c, np.where(inside_c, -_reversed(c, n_c), np.inf))),
            np.concatenate((b, np.where(inside_b, _reversed(b, n_b), 1.0))),
            np.concatenate((weight_rows(n_c, width_c, False), weight_rows(n_c, width_c, True))),
            np.concatenate((weight_rows(n_b, width_b, False), weight_rows(n_b, width_b, True))),
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
            lows[group], highs[group] = ratio_ci_sorted(*raw(group), level=level)
    return lows, highs


def _selected_ratio_ci(base: np.ndarray, cont: np.ndarray, reach: float) -> tuple[float, float]:
    """Both ends of the interval of one row of positive sorted samples, by selection
    (``perffarm.analysis.selection``): the weights of the two medians, the tails' ``reach``
    and the ratios' floats are the full sort's; the cumulative weights are summed per
    column, not along the sorted ratios, so an end whose tail is met within the rounding of
    the sums may be its neighbour. Samples of weight zero (far from the median of a large
    sample, the weights underflow) are left out: they cannot be an end.
    """
    w_cont = bootstrap_median_weights(cont.size)
    w_base = bootstrap_median_weights(base.size)
    c_used, b_used = np.flatnonzero(w_cont), np.flatnonzero(w_base)
    c_first, c_last = int(c_used[0]), int(c_used[-1]) + 1
    b_first, b_last = int(b_used[0]), int(b_used[-1]) + 1
    c, wc = cont[c_first:c_last], w_cont[c_first:c_last]
    b, wb = base[b_first:b_last], w_base[b_first:b_last]
    low = weighted_select(c, b, np.divide, wc, wb, reach)
    high = -weighted_select(-c[::-1], b, np.divide, wc[::-1], wb, reach)
    return low, high


def _reversed(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each row's first ``sizes`` values in reverse order (what follows them: unspecified)."""
    index = np.maximum(sizes[:, None] - 1 - np.arange(values.shape[1]), 0)
    return np.take_along_axis(values, index, axis=1)
