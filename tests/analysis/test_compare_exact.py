"""The exact bootstrap interval and the batch path of ``compare_samples``."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from perffarm.analysis import compare as compare_module
from perffarm.analysis.compare import (
    SamplePair,
    Verdict,
    _exact_ratio_ci_sorted,
    _ratio_ci_padded,
    bootstrap_median_weights,
    compare_batch,
    compare_samples,
    exact_ratio_ci,
    exact_ratio_ci_rows,
    mann_whitney,
)
from perffarm.model import Direction, Summary


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


def _monte_carlo_medians(
    values: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """The bootstrap the exact weights describe, drawn: n indices with replacement, sorted;
    the middle one for odd n, the lower or upper middle one at random for even n."""
    ordered = np.sort(values)
    n = ordered.size
    indices = np.sort(rng.integers(0, n, size=(resamples, n)), axis=1)
    if n % 2:
        return ordered[indices[:, n // 2]]
    pick = n // 2 - 1 + rng.integers(0, 2, size=resamples)
    return ordered[indices[np.arange(resamples), pick]]


@pytest.mark.parametrize("n", [5, 8, 11])
def test_median_weights_match_a_large_monte_carlo_bootstrap(n: int) -> None:
    rng = np.random.default_rng(42)
    medians = _monte_carlo_medians(np.arange(n, dtype=float), 400_000, rng)
    frequencies = np.bincount(medians.astype(int), minlength=n) / medians.size
    assert np.allclose(frequencies, bootstrap_median_weights(n), atol=0.003)


@pytest.mark.parametrize(("n1", "n2"), [(7, 9), (10, 10), (12, 15)])
def test_exact_interval_matches_a_large_monte_carlo_bootstrap(n1: int, n2: int) -> None:
    data = np.random.default_rng(n1 * n2)
    base, cont = data.normal(100, 3, n1), data.normal(104, 3, n2)
    rng = np.random.default_rng(7)
    resamples = 400_000
    ratios = _monte_carlo_medians(cont, resamples, rng) / _monte_carlo_medians(base, resamples, rng)
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


finite = st.floats(min_value=0.5, max_value=2.0, allow_nan=False, allow_infinity=False)
sample_lists = st.lists(
    st.one_of(finite, st.sampled_from([1.0, 1.25, 1.5])), min_size=0, max_size=14
)


@st.composite
def sample_pairs(draw: st.DrawFn) -> SamplePair:
    summary = st.one_of(
        st.none(),
        st.builds(
            Summary,
            n=st.integers(2, 40),
            mean=st.floats(0.5, 2.0),
            stdev=st.floats(0.0, 0.5),
        ),
    )
    return SamplePair(
        draw(sample_lists),
        draw(sample_lists),
        direction=draw(st.sampled_from([Direction.LOWER, Direction.HIGHER])),
        min_effect=draw(st.sampled_from([0.0, 0.02, 0.1])),
        baseline_summary=draw(summary),
        contender_summary=draw(summary),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(sample_pairs(), min_size=1, max_size=12), st.sampled_from([0.01, 0.05]))
def test_batch_equals_one_by_one(pairs: list[SamplePair], alpha: float) -> None:
    batch = compare_batch(pairs, alpha=alpha)
    for pair, together in zip(pairs, batch, strict=True):
        alone = compare_samples(
            pair.baseline,
            pair.contender,
            direction=pair.direction,
            min_effect=pair.min_effect,
            alpha=alpha,
            baseline_summary=pair.baseline_summary,
            contender_summary=pair.contender_summary,
        )
        assert together.to_dict() == alone.to_dict()


def test_batch_groups_sizes_without_mixing_rows() -> None:
    rng = np.random.default_rng(11)
    pairs = [
        SamplePair(rng.normal(100, 1, n).tolist(), rng.normal(100 * (1 + s), 1, n).tolist())
        for n, s in [(10, 0.1), (12, 0.0), (10, 0.0), (12, -0.1), (10, 0.1)]
    ]
    verdicts = [c.verdict for c in compare_batch(pairs)]
    assert verdicts == [
        Verdict.SLOWER,
        Verdict.UNCHANGED,
        Verdict.UNCHANGED,
        Verdict.FASTER,
        Verdict.SLOWER,
    ]


def test_batch_rejects_what_compare_samples_rejects() -> None:
    with pytest.raises(ValueError, match="finite"):
        compare_batch(
            [SamplePair([1.0] * 6, [1.0] * 6), SamplePair([1.0] * 5 + [math.nan], [1.0] * 6)]
        )
    with pytest.raises(ValueError, match="negative"):
        compare_batch([SamplePair([1.0] * 6, [1.0] * 6, min_effect=-0.1)])
    with pytest.raises(ValueError, match="alpha"):
        compare_batch([], alpha=1.5)


@pytest.mark.parametrize(("n1", "n2"), [(6, 9), (26, 30)])
def test_mann_whitney_with_ties_matches_scipy_in_a_batch(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 + n2)
    pairs = [(np.round(rng.normal(0, 1, n1)), np.round(rng.normal(0.5, 1, n2))) for _ in range(5)]
    pairs.append((rng.normal(0, 1, n1), rng.normal(0.5, 1, n2)))
    results = compare_batch([SamplePair(a.tolist(), b.tolist()) for a, b in pairs])
    for (a, b), result in zip(pairs, results, strict=True):
        p, u = mann_whitney(a, b)
        ties = len(np.unique(np.concatenate((a, b)))) < n1 + n2
        method = "asymptotic" if ties or max(n1, n2) > 25 else "exact"
        expected = stats.mannwhitneyu(b, a, alternative="two-sided", method=method)
        assert u == expected.statistic
        assert p == pytest.approx(expected.pvalue, rel=1e-9)
        assert result.p_value == p
        assert result.cliffs_delta == pytest.approx(2 * u / (n1 * n2) - 1)


# -- the quantile search against the full sort ------------------------------------------------
#
# ``exact_ratio_ci_rows`` finds each end without sorting the n1 · n2 ratios (a band from the
# weight tables' corners, binary searches per column, a few ratios sorted, the answer checked
# against the rounding of the sums); ``_exact_ratio_ci_sorted`` is the definition, every ratio
# sorted. They must agree exactly: the same float, down to the sign of a zero.

_values = st.one_of(
    st.floats(min_value=0.5, max_value=2.0),
    st.sampled_from([1.0, 1.25, 1.5, 2.0]),  # ties, within and across the sides
    st.floats(min_value=1e-300, max_value=1e300),  # ratios that underflow or overflow
    st.sampled_from([0.0, -0.0, -1.0]),  # the rows the full sort keeps
)


@st.composite
def _row_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    rows = draw(st.integers(1, 6))
    n1, n2 = draw(st.integers(1, 33)), draw(st.integers(1, 33))
    shape = st.sampled_from(["noise", "quantised", "mixed"])
    kind = draw(shape)
    if kind == "noise":
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        spread = draw(st.sampled_from([1e-9, 0.01, 0.3]))
        base = rng.lognormal(0.0, spread, (rows, n1))
        cont = rng.lognormal(draw(st.sampled_from([0.0, 0.05])), spread, (rows, n2))
        return base, cont
    pool = st.sampled_from([1.0, 1.25, 1.5, 2.0, 3.0]) if kind == "quantised" else _values
    base = [[draw(pool) for _ in range(n1)] for _ in range(rows)]
    cont = [[draw(pool) for _ in range(n2)] for _ in range(rows)]
    return np.array(base, dtype=float), np.array(cont, dtype=float)


def _assert_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    same = (actual == expected) & (np.signbit(actual) == np.signbit(expected))
    assert np.all(same | (np.isnan(actual) & np.isnan(expected))), (actual, expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_row_pairs(), st.sampled_from([0.99, 0.95, 0.9, 0.5]))
def test_quantile_search_equals_the_full_sort(
    pair: tuple[np.ndarray, np.ndarray], level: float
) -> None:
    base, cont = pair
    expected = _exact_ratio_ci_sorted(base, cont, level=level)
    actual = exact_ratio_ci_rows(base, cont, level=level)
    _assert_identical(actual[0], expected[0])
    _assert_identical(actual[1], expected[1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_row_pairs(), min_size=2, max_size=6), st.sampled_from([0.99, 0.9]))
def test_padded_rows_of_mixed_sizes_equal_the_full_sort(
    groups: list[tuple[np.ndarray, np.ndarray]], level: float
) -> None:
    # Rows of several sizes padded into one array, as compare_batch's size classes are.
    rows = [(b, c) for base, cont in groups for b, c in zip(base, cont, strict=True)]
    width_b = max(b.size for b, _ in rows)
    width_c = max(c.size for _, c in rows)
    padded_b = np.full((len(rows), width_b), np.inf)
    padded_c = np.full((len(rows), width_c), np.inf)
    for i, (b, c) in enumerate(rows):
        padded_b[i, : b.size] = np.sort(b)
        padded_c[i, : c.size] = np.sort(c)
    n_b = np.array([b.size for b, _ in rows])
    n_c = np.array([c.size for _, c in rows])
    lows, highs = _ratio_ci_padded(
        padded_b,
        padded_c,
        n_b,
        n_c,
        level,
        lambda chosen: (
            np.array([rows[i][0] for i in chosen]),
            np.array([rows[i][1] for i in chosen]),
        ),
    )
    for i, (b, c) in enumerate(rows):
        low, high = _exact_ratio_ci_sorted(b[None, :], c[None, :], level=level)
        _assert_identical(lows[i : i + 1], low)
        _assert_identical(highs[i : i + 1], high)


def test_rows_the_search_cannot_certify_take_the_full_sort(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(5)
    base, cont = rng.lognormal(0, 0.1, (40, 12)), rng.lognormal(0.02, 0.1, (40, 15))
    expected = exact_ratio_ci_rows(base, cont, level=0.99)
    real = compare_module._ratio_quantile

    def unsure(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        values, certain = real(*args, **kwargs)
        return values, np.zeros_like(certain)

    monkeypatch.setattr(compare_module, "_ratio_quantile", unsure)
    actual = exact_ratio_ci_rows(base, cont, level=0.99)
    _assert_identical(actual[0], expected[0])
    _assert_identical(actual[1], expected[1])
    _assert_identical(actual[0], _exact_ratio_ci_sorted(base, cont, level=0.99)[0])


def test_a_large_batch_of_mixed_sizes_equals_one_by_one() -> None:
    # Sizes shared by many pairs make their own group, the others share padded size classes.
    rng = np.random.default_rng(21)
    sizes = [(10, 10)] * 80 + [(int(a), int(b)) for a, b in rng.integers(5, 40, (120, 2))]
    pairs = [
        SamplePair(
            rng.lognormal(2, 0.05, n1).tolist(),
            rng.lognormal(2 + 0.05 * (i % 3 == 0), 0.05, n2).tolist(),
        )
        for i, (n1, n2) in enumerate(sizes)
    ]
    batch = compare_batch(pairs)
    for pair, together in zip(pairs, batch, strict=True):
        assert together.to_dict() == compare_samples(pair.baseline, pair.contender).to_dict()
