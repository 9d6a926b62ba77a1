"""Rank statistics of two samples: the Mann-Whitney U test and the Hodges-Lehmann shift.

Both work on many pairs at once, as rows of sorted samples padded with +inf to a common
width (``compare_batch`` groups the pairs of a run comparison so); ``mann_whitney`` is the
same computation for one pair.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from perffarm.analysis.selection import weighted_select

# Up to this many samples a side (and no ties) the exact distribution of U is used.
EXACT_LIMIT = 25
# Up to this many differences a row, Hodges-Lehmann lists them (8 MB); beyond, it selects.
LISTED_DIFFERENCES = 1 << 20
# Below this natural logarithm a number of orderings converts to a float (e^700 < 1.8e308).
_LOG_FLOAT_MAX = 700.0


def smallest_mann_whitney_p(n1: int, n2: int) -> float:
    """The smallest two-sided p the exact test can give: complete separation, 2 / C(n1+n2, n1).

    For any sample sizes: where C(n1+n2, n1) is beyond a float (above ~515 samples a
    side), from its logarithm; the p is then below 1e-300 and may round to 0.0.
    """
    if n1 < 1 or n2 < 1:
        return 1.0
    log_ways = math.lgamma(n1 + n2 + 1) - math.lgamma(n1 + 1) - math.lgamma(n2 + 1)
    if log_ways < _LOG_FLOAT_MAX:
        return min(1.0, 2.0 / math.comb(n1 + n2, n1))
    return math.exp(math.log(2.0) - log_ways)


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
    p, u = mann_whitney_rows(base, cont, *sizes)
    return float(p[0]), float(u[0])


def mann_whitney_rows(
    base: np.ndarray, cont: np.ndarray, n_base: np.ndarray, n_cont: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(two-sided p, U) of sorted rows padded with +inf, ``n_base`` and ``n_cont`` per row.

    U is the contender's rank sum (mid-ranks for ties) less its least value; it counts the
    (contender, baseline) pairs where the contender is larger, ties half, exactly as the
    pairwise count does (both are half-integers, exact in floats). Identical constant sides
    are simply no evidence.
    """
    from scipy import special  # scipy costs 0.3-0.7 s to import: only when used

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


def hodges_lehmann_rows(
    base: np.ndarray, cont: np.ndarray, n_base: np.ndarray, n_cont: np.ndarray
) -> np.ndarray:
    """Median of all contender - baseline differences of sorted rows padded with +inf.

    Up to LISTED_DIFFERENCES differences a row, they are listed (chunked to bound memory)
    and partitioned as ``np.median`` does; beyond, the two middle ones are selected without
    listing them (``perffarm.analysis.selection``), the same floats. The median is the mean
    of the middle two (or the middle one), as ``np.median`` takes it.
    """
    counts = n_base * n_cont
    large = counts > LISTED_DIFFERENCES
    if not large.any():
        return _hodges_lehmann_listed(base, cont, n_base, n_cont)
    out = np.empty(base.shape[0])
    for row in np.flatnonzero(large).tolist():
        b, c = base[row, : n_base[row]], cont[row, : n_cont[row]]
        out[row] = _hodges_lehmann_selected(b, c)
    rest = np.flatnonzero(~large)
    if rest.size:
        width_b, width_c = int(n_base[rest].max()), int(n_cont[rest].max())
        out[rest] = _hodges_lehmann_listed(
            base[rest, :width_b], cont[rest, :width_c], n_base[rest], n_cont[rest]
        )
    return out


def _hodges_lehmann_selected(base: np.ndarray, cont: np.ndarray) -> float:
    """The median of the differences cont_k - base_l of two sorted samples, by selection."""
    count = base.size * cont.size
    ones_c, ones_b = np.ones(cont.size), np.ones(base.size)
    lower = weighted_select(cont, base, np.subtract, ones_c, ones_b, (count - 1) // 2 + 1)
    if count % 2:
        return lower
    upper = weighted_select(cont, base, np.subtract, ones_c, ones_b, count // 2 + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.mean(np.array([lower, upper])))


def _hodges_lehmann_listed(
    base: np.ndarray, cont: np.ndarray, n_base: np.ndarray, n_cont: np.ndarray
) -> np.ndarray:
    """``hodges_lehmann_rows`` with every difference listed.

    Rows of one size are partitioned as ``np.median`` does; padded rows (baseline pads
    -inf, contender pads +inf, so every pad difference is +inf) are sorted and read at their
    own middle.
    """
    rows, width = base.shape[0], base.shape[1] * cont.shape[1]
    uniform = bool((n_base == base.shape[1]).all() and (n_cont == cont.shape[1]).all())
    if not uniform:
        base = np.where(np.arange(base.shape[1]) < n_base[:, None], base, -np.inf)
    out = np.empty(rows)
    step = rows_per_chunk(width)
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


def rows_per_chunk(width: int) -> int:
    """Rows per chunk so that a (rows, width) array stays around a million elements."""
    return max(1, (1 << 20) // max(width, 1))


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
