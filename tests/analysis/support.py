"""Helpers of the comparison tests: the bootstrap drawn at random (what the exact weights and
intervals are checked against), and float arrays compared bit for bit."""

from __future__ import annotations

import numpy as np


def monte_carlo_medians(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The bootstrap the exact weights describe, drawn: n indices with replacement, sorted;
    the middle one for odd n, the lower or upper middle one at random for even n."""
    ordered = np.sort(values)
    n = ordered.size
    indices = np.sort(rng.integers(0, n, size=(resamples, n)), axis=1)
    if n % 2:
        return ordered[indices[:, n // 2]]
    pick = n // 2 - 1 + rng.integers(0, 2, size=resamples)
    return ordered[indices[np.arange(resamples), pick]]


def assert_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    same = (actual == expected) & (np.signbit(actual) == np.signbit(expected))
    assert np.all(same | (np.isnan(actual) & np.isnan(expected))), (actual, expected)
