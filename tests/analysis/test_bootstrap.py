"""The exact bootstrap interval of the ratio of medians."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perffarm.analysis import bootstrap as bootstrap_module
from perffarm.analysis.bootstrap import (
    LISTED_RATIOS,
    exact_ratio_ci,
    exact_ratio_ci_rows,
    ratio_ci_sorted,
)
from tests.analysis.support import assert_identical, monte_carlo_medians


@pytest.mark.parametrize(("n1", "n2"), [(7, 9), (10, 10), (12, 15)])
def test_exact_interval_matches_a_large_monte_carlo_bootstrap(n1: int, n2: int) -> None:
    data = np.random.default_rng(n1 * n2)
    base, cont = data.normal(100, 3, n1), data.normal(104, 3, n2)
    rng = np.random.default_rng(7)
    resamples = 400_000
    ratios = monte_carlo_medians(cont, resamples, rng) / monte_carlo_medians(base, resamples, rng)
    expected = np.quantile(ratios, [0.005, 0.995])
    low, high = exact_ratio_ci(base, cont, level=0.99)
    # Loose: the Monte-Carlo quantile may land on a neighbouring atom.
    assert low == pytest.approx(expected[0], rel=0.004)
    assert high == pytest.approx(expected[1], rel=0.004)
    # The exact ends are the quantiles of the exact distribution: the Monte-Carlo tails beyond
    # them hold about alpha/2 each.
    assert np.mean(ratios < low) <= 0.005 + 0.001
    assert np.mean(ratios > high) <= 0.005 + 0.001
    assert np.mean(ratios <= low) >= 0.005 - 0.001
    assert np.mean(ratios >= high) >= 0.005 - 0.001


@pytest.mark.parametrize("n", [6, 10, 11])
def test_interval_coverage_is_sane(n: int) -> None:
    # Two samples of one distribution: the 99% interval of the ratio of medians should
    # contain 1 about 99% of the time (the percentile bootstrap of a median is a little
    # rough at small n; a broken interval would be far off either way).
    rng = np.random.default_rng(n)
    trials = 400
    hits = 0
    widths = []
    for _ in range(trials):
        base, cont = rng.lognormal(4.6, 0.03, n), rng.lognormal(4.6, 0.03, n)
        low, high = exact_ratio_ci(base, cont, level=0.99)
        hits += low <= 1.0 <= high
        widths.append(high - low)
    assert 0.97 <= hits / trials <= 1.0
    # Not trivially wide either: a few times the spread of the data (cv 3%).
    assert np.median(widths) < 0.2


def test_interval_finds_a_real_shift() -> None:
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(100):
        low, _ = exact_ratio_ci(rng.normal(100, 2, 20), rng.normal(110, 2, 20), level=0.99)
        found += low > 1.02
    assert found >= 95


def test_a_zero_baseline_sample_gives_an_infinite_end_not_an_error() -> None:
    low, high = exact_ratio_ci([0.0, 1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.1, 1.2, 1.1, 1.0, 1.2])
    assert math.isfinite(low) and low > 0
    assert high == math.inf or high > 1


def test_rows_the_search_cannot_certify_take_the_full_sort(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(5)
    base, cont = rng.lognormal(0, 0.1, (40, 12)), rng.lognormal(0.02, 0.1, (40, 15))
    expected = exact_ratio_ci_rows(base, cont, level=0.99)
    real = bootstrap_module.ratio_quantile

    def unsure(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        values, certain = real(*args, **kwargs)
        return values, np.zeros_like(certain)

    monkeypatch.setattr(bootstrap_module, "ratio_quantile", unsure)
    actual = exact_ratio_ci_rows(base, cont, level=0.99)
    assert_identical(actual[0], expected[0])
    assert_identical(actual[1], expected[1])
    assert_identical(actual[0], ratio_ci_sorted(base, cont, level=0.99)[0])


@pytest.mark.slow  # the reference sorts 4.2 million ratios (a few seconds)
def test_beyond_the_listed_size_the_ends_are_the_full_sort_s() -> None:
    rng = np.random.default_rng(3)
    n = 2050
    assert n * n > LISTED_RATIOS
    base, cont = rng.lognormal(0, 0.1, (1, n)), rng.lognormal(0.02, 0.1, (1, n))
    expected = ratio_ci_sorted(base, cont, level=0.99)
    actual = exact_ratio_ci_rows(base, cont, level=0.99)
    assert_identical(actual[0], expected[0])
    assert_identical(actual[1], expected[1])


def test_beyond_the_listed_size_a_non_positive_sample_leaves_no_interval() -> None:
    rng = np.random.default_rng(4)
    base = rng.lognormal(0, 0.1, 2100)
    base[0] = 0.0
    low, high = exact_ratio_ci(base, rng.lognormal(0, 0.1, 2100))
    assert math.isnan(low) and math.isnan(high)
