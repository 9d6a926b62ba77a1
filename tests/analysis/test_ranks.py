"""Rank statistics: the Mann-Whitney U test."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from perffarm.analysis.ranks import (
    LISTED_DIFFERENCES,
    hodges_lehmann_rows,
    mann_whitney,
    smallest_mann_whitney_p,
)
from perffarm.analysis.samples import compare_samples
from perffarm.analysis.verdict import Verdict


def test_smallest_mann_whitney_p_decides_when_samples_suffice() -> None:
    assert smallest_mann_whitney_p(5, 5) == pytest.approx(2 / 252)
    assert smallest_mann_whitney_p(4, 4) > 0.01
    # Five a side, completely separated: significant at 0.01.
    result = compare_samples([1.0, 1.01, 1.02, 1.03, 1.04], [1.5, 1.51, 1.52, 1.53, 1.54])
    assert result.verdict is Verdict.SLOWER


@pytest.mark.parametrize(("n1", "n2", "ties"), [(5, 7, False), (20, 20, False), (12, 30, True)])
def test_mann_whitney_matches_scipy(n1: int, n2: int, ties: bool) -> None:
    rng = np.random.default_rng(n1 * n2)
    a, b = rng.normal(0, 1, n1), rng.normal(0.7, 1, n2)
    if ties:
        a, b = np.round(a), np.round(b)
    p, u = mann_whitney(a, b)
    method = "asymptotic" if ties else "exact"
    expected = stats.mannwhitneyu(b, a, alternative="two-sided", method=method)
    assert u == expected.statistic
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(("n1", "n2"), [(1, 1), (2, 2), (5, 5), (300, 2), (400, 400), (510, 510)])
def test_smallest_p_is_two_over_the_number_of_orderings(n1: int, n2: int) -> None:
    expected = float(Fraction(2, math.comb(n1 + n2, n1)))
    assert smallest_mann_whitney_p(n1, n2) == pytest.approx(min(1.0, expected), rel=1e-10)


@pytest.mark.parametrize(("n1", "n2"), [(600, 600), (100_000, 100_000), (1, 100_000), (40, 10**9)])
def test_smallest_p_for_any_sample_count(n1: int, n2: int) -> None:
    # 2 / C(n1+n2, n1) overflowed a float beyond ~515 samples a side (OverflowError).
    p = smallest_mann_whitney_p(n1, n2)
    assert 0.0 <= p < 1e-4
    assert smallest_mann_whitney_p(n1 + 1, n2) <= p
    assert smallest_mann_whitney_p(1, 100_000) == pytest.approx(2 / 100_001, rel=1e-15)


def _median_of_differences(base: np.ndarray, cont: np.ndarray) -> float:
    return float(np.median((cont[:, None] - base[None, :]).ravel()))


@pytest.mark.parametrize(
    ("n1", "n2", "quantised"), [(1100, 1000, False), (1101, 1001, False), (1500, 900, True)]
)
def test_hodges_lehmann_selects_beyond_the_listed_size_the_same_float(
    n1: int, n2: int, quantised: bool
) -> None:
    rng = np.random.default_rng(n1)
    base, cont = np.sort(rng.lognormal(0, 0.2, n1)), np.sort(rng.lognormal(0.1, 0.2, n2))
    if quantised:  # timer resolution: most differences tie
        base, cont = np.round(base, 1), np.round(cont, 1)
    assert n1 * n2 > LISTED_DIFFERENCES
    # Two rows of different sizes padded together, as compare_batch's size classes are.
    width_b, width_c = n1 + 3, n2 + 5
    padded_b, padded_c = np.full((2, width_b), np.inf), np.full((2, width_c), np.inf)
    padded_b[0, :n1], padded_c[0, :n2] = base, cont
    padded_b[1, :5], padded_c[1, :4] = base[:5], cont[:4]
    found = hodges_lehmann_rows(padded_b, padded_c, np.array([n1, 5]), np.array([n2, 4]))
    assert found[0] == _median_of_differences(base, cont)
    assert found[1] == _median_of_differences(base[:5], cont[:4])


def test_mann_whitney_at_a_hundred_thousand_a_side() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 100_000), rng.normal(0.01, 1, 100_000)
    p, u = mann_whitney(a, b)
    expected = stats.mannwhitneyu(b, a, alternative="two-sided", method="asymptotic")
    assert u == expected.statistic
    assert p == pytest.approx(expected.pvalue, rel=1e-9)
