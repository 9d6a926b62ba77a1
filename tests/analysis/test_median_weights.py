"""The exact bootstrap distribution of a sample median."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from perffarm.analysis.median_weights import EXACT_WEIGHTS_LIMIT, bootstrap_median_weights
from tests.analysis.support import monte_carlo_medians


def _order_statistic_at_most(n: int, draws: int, rank: int, i: int) -> Fraction:
    """P(the rank-th smallest of ``draws`` draws from n indices is among the i smallest)."""
    return sum(
        (
            Fraction(math.comb(draws, k) * i**k * (n - i) ** (draws - k), n**draws)
            for k in range(rank, draws + 1)
        ),
        Fraction(0),
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 9, 10, 11, 20, 30])
def test_median_weights_are_a_distribution_symmetric_about_the_middle(n: int) -> None:
    weights = bootstrap_median_weights(n)
    assert weights.shape == (n,)
    assert np.all(weights > 0)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(weights, weights[::-1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("n", [2, 4, 6, 10, 20])
def test_even_median_is_either_middle_value_with_equal_probability(n: int) -> None:
    # The bootstrap median of an even resample is its lower or upper middle value, each with
    # probability 1/2: computed here from the two order statistics of n draws themselves.
    half = n // 2
    for i in range(n):
        lower = _order_statistic_at_most(n, n, half, i + 1) - _order_statistic_at_most(
            n, n, half, i
        )
        upper = _order_statistic_at_most(n, n, half + 1, i + 1) - _order_statistic_at_most(
            n, n, half + 1, i
        )
        assert bootstrap_median_weights(n)[i] == pytest.approx(
            float((lower + upper) / 2), rel=1e-12
        )


@pytest.mark.parametrize("n", [5, 8, 11])
def test_median_weights_match_a_large_monte_carlo_bootstrap(n: int) -> None:
    rng = np.random.default_rng(42)
    medians = monte_carlo_medians(np.arange(n, dtype=float), 400_000, rng)
    frequencies = np.bincount(medians.astype(int), minlength=n) / medians.size
    assert np.allclose(frequencies, bootstrap_median_weights(n), atol=0.003)


def _exact_weights(n: int) -> list[Fraction]:
    draws = n if n % 2 else n - 1
    rank = (draws + 1) // 2
    at_most = [_order_statistic_at_most(n, draws, rank, i) for i in range(n + 1)]
    return [at_most[i + 1] - at_most[i] for i in range(n)]


@pytest.mark.parametrize("n", [EXACT_WEIGHTS_LIMIT + 1, 150])
def test_beyond_the_exact_limit_the_weights_are_within_rounding(n: int) -> None:
    exact = np.array([float(w) for w in _exact_weights(n)])
    found = bootstrap_median_weights(n)
    assert np.allclose(found, exact, rtol=1e-11, atol=1e-300)
    assert np.array_equal(found, found[::-1])


@pytest.mark.parametrize("n", [600, 100_000])
def test_weights_of_large_samples_are_a_distribution_about_the_middle(n: int) -> None:
    weights = bootstrap_median_weights(n)
    assert weights.shape == (n,) and np.all(weights >= 0)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert int(np.argmax(weights)) in (n // 2 - 1, n // 2)
    # The median of n draws wanders about sqrt(n)/2 places: the weights say so.
    middle = (n - 1) / 2
    spread = np.sqrt(np.sum(weights * (np.arange(n) - middle) ** 2))
    assert spread == pytest.approx(np.sqrt(n) / 2, rel=0.05)
