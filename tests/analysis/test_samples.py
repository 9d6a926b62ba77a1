"""Comparing two sets of samples, one pair or a batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from perffarm.analysis.ranks import mann_whitney
from perffarm.analysis.runs import compare_runs
from perffarm.analysis.samples import SamplePair, compare_batch, compare_samples
from perffarm.analysis.verdict import Verdict
from perffarm.model import Direction, Result, RunDocument, Summary


def _normal(seed: int, mean: float, cv: float, n: int) -> list[float]:
    return np.random.default_rng(seed).normal(mean, mean * cv, n).tolist()


def test_ten_percent_slower_with_low_noise_is_slower_with_an_interval_excluding_one() -> None:
    result = compare_samples(
        _normal(1, 100.0, 0.01, 20), _normal(2, 110.0, 0.01, 20), direction=Direction.LOWER
    )
    assert result.verdict is Verdict.SLOWER
    assert result.basis == "samples"
    assert result.ratio == pytest.approx(1.10, abs=0.01)
    low, high = result.ratio_ci
    assert 1.0 < low < result.ratio < high
    assert low > 1.02  # clears the minimum effect, not only 1
    assert result.p_value < 0.01
    assert result.cliffs_delta == pytest.approx(1.0)
    assert result.hodges_lehmann == pytest.approx(10.0, abs=1.0)


def test_same_distribution_is_no_significant_change() -> None:
    for seed in range(10):
        result = compare_samples(
            _normal(seed, 100.0, 0.03, 15), _normal(seed + 100, 100.0, 0.03, 15)
        )
        assert result.verdict is Verdict.UNCHANGED, seed


def test_significant_change_below_the_minimum_effect_is_no_change() -> None:
    result = compare_samples(
        _normal(3, 100.0, 0.001, 30), _normal(4, 100.5, 0.001, 30), min_effect=0.02
    )
    assert result.p_value < 1e-6  # the test alone would call it
    assert result.verdict is Verdict.UNCHANGED
    assert any("minimum effect" in note for note in result.notes)
    # The same data with a smaller threshold is a real slowdown.
    assert (
        compare_samples(
            _normal(3, 100.0, 0.001, 30), _normal(4, 100.5, 0.001, 30), min_effect=0.002
        ).verdict
        is Verdict.SLOWER
    )


def test_direction_higher_is_better_turns_a_larger_value_into_faster() -> None:
    base, cont = _normal(5, 1000.0, 0.01, 12), _normal(6, 1100.0, 0.01, 12)
    assert compare_samples(base, cont, direction=Direction.HIGHER).verdict is Verdict.FASTER
    assert compare_samples(base, cont, direction=Direction.LOWER).verdict is Verdict.SLOWER
    assert compare_samples(cont, base, direction=Direction.HIGHER).verdict is Verdict.SLOWER
    assert compare_samples(cont, base, direction=Direction.LOWER).verdict is Verdict.FASTER


def test_the_interval_is_exact_and_uses_no_random_numbers() -> None:
    # The bootstrap distribution is computed, not sampled: the seed and the number of
    # resamples (kept for compatibility) change nothing, and the order of the samples neither.
    base, cont = _normal(7, 100.0, 0.05, 10), _normal(8, 104.0, 0.05, 10)
    first = compare_samples(base, cont, seed=3)
    assert compare_samples(base, cont, seed=4, bootstrap=50).ratio_ci == first.ratio_ci
    assert compare_samples(base[::-1], cont[::-1]).ratio_ci == first.ratio_ci
    low, high = first.ratio_ci
    # Both ends are ratios of two samples: the bootstrap medians take sample values.
    ratios = {c / b for b in base for c in cont}
    assert low in ratios and high in ratios


def test_too_few_samples_and_no_summary_is_unknown() -> None:
    result = compare_samples([100.0, 101.0, 99.0], [150.0, 151.0, 149.0])
    assert result.verdict is Verdict.UNKNOWN
    assert "too few samples" in result.notes[0]
    assert "at least 5 repetitions" in result.notes[0]
    assert "at least 4 repetitions" in compare_samples([1.0] * 3, [2.0] * 3, alpha=0.05).notes[0]


def test_instability_is_carried_into_the_notes() -> None:
    result = compare_samples(_normal(9, 100.0, 0.2, 8), _normal(10, 100.0, 0.2, 8))
    assert any(note.startswith("baseline: unstable") for note in result.notes)
    assert any(note.startswith("contender: only 8 samples") for note in result.notes)
    quiet = compare_samples(_normal(9, 100.0, 0.01, 20), _normal(10, 100.0, 0.01, 20))
    assert quiet.notes == []


def test_a_baseline_without_a_meaningful_ratio_is_unknown() -> None:
    result = compare_samples([0.0] * 6, [1.0] * 6)
    assert result.verdict is Verdict.UNKNOWN
    assert result.ratio is None
    assert "not positive" in result.notes[-1]
    with pytest.raises(ValueError, match="finite"):
        compare_samples([1.0, float("nan")] * 3, [1.0] * 6)


def test_identical_constant_samples_are_unchanged_not_an_error() -> None:
    result = compare_samples([5.0] * 6, [5.0] * 6)
    assert result.verdict is Verdict.UNCHANGED
    assert result.p_value == 1.0


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


@pytest.mark.parametrize("n", [1, 2, 600, 100_000])
def test_any_number_of_samples_a_side(n: int) -> None:
    # Issue 17: above ~515 samples a side the comparison crashed (an overflow in the
    # smallest p); at 100,000 the differences and ratios would not fit in memory.
    rng = np.random.default_rng(n)
    base = rng.lognormal(0.0, 0.05, n).tolist()
    slower = rng.lognormal(0.05, 0.05, n).tolist()
    same = rng.lognormal(0.0, 0.05, n).tolist()
    result = compare_samples(base, slower)
    if n < 5:
        assert result.verdict is Verdict.UNKNOWN
        assert "too few samples" in result.notes[0]
        return
    assert result.verdict is Verdict.SLOWER
    assert result.basis == "samples" and result.n_baseline == n
    low, high = result.ratio_ci
    assert low < math.exp(0.05) < high and low > 1.02
    assert result.hodges_lehmann == pytest.approx(math.exp(0.05) - 1, abs=0.01)
    assert compare_samples(base, same).verdict is Verdict.UNCHANGED


def test_runs_of_six_hundred_samples_compare() -> None:
    rng = np.random.default_rng(6)

    def run(shift: float) -> RunDocument:
        return RunDocument(
            project="demo",
            machine="m1",
            results=[
                Result(
                    benchmark=f"b{i}",
                    metric="time",
                    unit="s",
                    samples=rng.lognormal(shift * (i == 0), 0.05, 600).tolist(),
                )
                for i in range(3)
            ],
        )

    verdicts = [item.verdict for item in compare_runs(run(0.0), run(0.05))]
    assert verdicts == [Verdict.SLOWER, Verdict.UNCHANGED, Verdict.UNCHANGED]
