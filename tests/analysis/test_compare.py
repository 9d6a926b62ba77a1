"""Comparisons of two sample sets and of two runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from perffarm.analysis.compare import (
    Override,
    Presence,
    Verdict,
    compare_runs,
    compare_samples,
    mann_whitney,
    smallest_mann_whitney_p,
)
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


def test_summary_fallback_when_there_are_no_samples() -> None:
    base = Summary(n=10, mean=100.0, stdev=1.0)
    cont = Summary(n=10, mean=110.0, stdev=1.0)
    result = compare_samples([], [], baseline_summary=base, contender_summary=cont)
    assert result.basis == "summary"
    assert result.verdict is Verdict.SLOWER
    assert result.ratio == pytest.approx(1.1)
    assert result.ratio_ci[0] > 1.02
    assert any("summaries" in note for note in result.notes)
    # Welch's t-test from the summaries equals scipy's on the same figures.
    expected = stats.ttest_ind_from_stats(110, 1, 10, 100, 1, 10, equal_var=False).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-6)
    same = compare_samples(
        [], [], baseline_summary=base, contender_summary=Summary(n=10, mean=100.2, stdev=1.0)
    )
    assert same.verdict is Verdict.UNCHANGED


def test_summary_fallback_when_samples_are_too_few_to_decide() -> None:
    result = compare_samples(
        [100.0, 101.0, 99.0],
        [110.0, 111.0, 109.0],
        baseline_summary=Summary(n=30, mean=100.0, stdev=1.0),
        contender_summary=Summary(n=30, mean=110.0, stdev=1.0),
    )
    assert result.basis == "summary"
    assert result.verdict is Verdict.SLOWER
    assert "3 and 3 samples cannot reach" in result.notes[0]


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


def _run(results: list[Result]) -> RunDocument:
    return RunDocument(project="demo", machine="m1", results=results)


def _result(benchmark: str, samples: list[float], **kwargs: object) -> Result:
    return Result(benchmark=benchmark, metric="time", unit="s", samples=samples, **kwargs)


def test_compare_runs_matches_by_benchmark_params_and_metric() -> None:
    baseline = _run(
        [
            _result("sort", _normal(1, 1.0, 0.01, 10), params={"n": 10, "algo": "quick"}),
            _result("sort", _normal(2, 2.0, 0.01, 10), params={"n": 20, "algo": "quick"}),
            _result("gone", _normal(3, 1.0, 0.01, 10)),
        ]
    )
    contender = _run(
        [
            # Same params in another order: the same series.
            _result("sort", _normal(4, 1.2, 0.01, 10), params={"algo": "quick", "n": 10}),
            _result("sort", _normal(5, 2.0, 0.01, 10), params={"n": 20, "algo": "quick"}),
            _result("new", _normal(6, 1.0, 0.01, 10)),
        ]
    )
    items = {(i.benchmark, i.params.get("n")): i for i in compare_runs(baseline, contender)}
    assert items["sort", 10].verdict is Verdict.SLOWER
    assert items["sort", 20].verdict is Verdict.UNCHANGED
    assert items["gone", None].presence is Presence.BASELINE_ONLY
    assert items["new", None].presence is Presence.CONTENDER_ONLY
    assert items["new", None].comparison is None


def test_compare_runs_applies_overrides() -> None:
    baseline = _run(
        [_result("a", _normal(1, 1.0, 0.01, 10)), _result("b", _normal(2, 1.0, 0.01, 10))]
    )
    contender = _run(
        [_result("a", _normal(3, 1.1, 0.01, 10)), _result("b", _normal(4, 1.1, 0.01, 10))]
    )
    items = compare_runs(
        baseline,
        contender,
        overrides={"a": Override(ignore=True), "b*": Override(min_effect=0.2)},
    )
    by_name = {i.benchmark: i for i in items}
    assert by_name["a"].presence is Presence.IGNORED
    assert by_name["b"].verdict is Verdict.UNCHANGED  # 10% is under the 20% override
    flipped = compare_runs(
        baseline, contender, overrides={"b": Override(direction=Direction.HIGHER)}
    )
    assert {i.benchmark: i.verdict for i in flipped}["b"] is Verdict.FASTER
