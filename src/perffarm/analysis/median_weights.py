"""The exact bootstrap distribution of a sample median: which sample is the median of a
resample, with what probability. It depends on the sample size only.

Up to EXACT_WEIGHTS_LIMIT samples the weights are computed in integers (exact to the last
bit of a float); beyond, where the integers grow with n² digits (seconds at 600 samples,
minutes at 2,000), from the regularised incomplete beta function in floats (a relative
error around 1e-13).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

EXACT_WEIGHTS_LIMIT = 128


@functools.cache
def bootstrap_median_weights(n: int) -> np.ndarray:
    """P(the bootstrap median of n samples is the i-th smallest sample), i = 0 .. n-1.

    A resample draws n indices with replacement; at most k of its draws fall on the i
    smallest samples with probability P(Binomial(n, i/n) <= k), so the r-th order statistic
    of the resample is at most the i-th sample with probability P(Binomial(n, i/n) >= r). For
    odd n the median is the order statistic r = (n + 1) / 2. For even n the bootstrap median
    is the lower or the upper of the two middle values of the resample, each with
    probability 1/2, which is the same distribution as the median of n - 1 draws (odd):
    r = n / 2 of a Binomial(n - 1, i/n). They depend on n only: exact to the last bit of a
    float up to EXACT_WEIGHTS_LIMIT samples (integers), within about 1e-13 beyond.
    """
    if n < 1:
        raise ValueError("no samples")
    draws = n if n % 2 else n - 1
    rank = (draws + 1) // 2
    if n > EXACT_WEIGHTS_LIMIT:
        return _weights_in_floats(n, draws, rank)
    at_most = [
        sum(math.comb(draws, k) * i**k * (n - i) ** (draws - k) for k in range(rank, draws + 1))
        for i in range(n + 1)
    ]
    scale = n**draws
    return np.array(
        [float(Fraction(at_most[i + 1] - at_most[i], scale)) for i in range(n)], dtype=float
    )


def _weights_in_floats(n: int, draws: int, rank: int) -> np.ndarray:
    """``bootstrap_median_weights`` beyond the exact limit: P(Binomial(draws, p) >= rank) is
    the regularised incomplete beta function I_p(rank, draws - rank + 1). The weights are
    symmetric (w[i] = w[n - 1 - i]): the lower half is taken as differences of small
    probabilities, where they are accurate, and mirrored."""
    from scipy import special  # scipy costs 0.3-0.7 s to import: only when used

    at_most = special.betainc(rank, draws - rank + 1, np.arange(n + 1) / n)
    weights = np.diff(at_most)
    half = (n + 1) // 2
    weights[n - half :] = weights[:half][::-1]
    return weights


@functools.cache
def median_weight_table(n: int, width: int, reverse: bool) -> np.ndarray:
    weights = bootstrap_median_weights(n)
    out = np.zeros(width)
    out[:n] = weights[::-1] if reverse else weights
    return out


def weight_rows(sizes: np.ndarray, width: int, reverse: bool) -> np.ndarray:
    """Bootstrap median weights per row, zero beyond each row's size."""
    first = int(sizes[0])
    if (sizes == first).all():
        return np.broadcast_to(median_weight_table(first, width, reverse), (sizes.size, width))
    keys, inverse = np.unique(sizes, return_inverse=True)
    table = np.stack([median_weight_table(int(n), width, reverse) for n in keys.tolist()])
    return table[inverse]
