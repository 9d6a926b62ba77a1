"""The fallback on stored summaries: Welch's t-test and the ratio of means."""

from __future__ import annotations

import pytest
from scipy import stats

from perffarm.analysis.samples import compare_samples
from perffarm.analysis.verdict import Verdict
from perffarm.model import Summary


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


@pytest.mark.parametrize("magnitude", [1e-300, 1.0, 1e160, 1e300, 1.7e308])
def test_summaries_compare_at_any_magnitude(magnitude: float) -> None:
    # Found by the terminal's hostile-number test (issue 17): a stdev of 1e160 squared
    # overflowed (OverflowError), and `perffarm compare` crashed on such stored runs.
    base = Summary(n=3, mean=magnitude * 0.5, stdev=magnitude * 0.005)
    cont = Summary(n=3, mean=magnitude * 0.55, stdev=magnitude * 0.005)
    result = compare_samples([], [], baseline_summary=base, contender_summary=cont)
    reference = compare_samples(
        [],
        [],
        baseline_summary=Summary(n=3, mean=0.5, stdev=0.005),
        contender_summary=Summary(n=3, mean=0.55, stdev=0.005),
    )
    assert result.verdict is reference.verdict
    assert result.ratio == pytest.approx(reference.ratio, rel=1e-9)
    assert result.p_value == pytest.approx(reference.p_value, rel=1e-6)


def test_a_mean_far_below_its_stdev_gives_an_unbounded_interval_not_an_error() -> None:
    # The smallest positive mean beside a stdev of 1e300: the relative error once divided
    # by zero (its square underflowed).
    base = Summary(n=3, mean=5e-324, stdev=1e300)
    cont = Summary(n=3, mean=1.0, stdev=0.1)
    result = compare_samples([], [], baseline_summary=base, contender_summary=cont)
    assert result.verdict is Verdict.UNCHANGED
    assert result.ratio_ci is not None and result.ratio_ci[1] == float("inf")


@pytest.mark.parametrize(
    ("base", "cont"),
    [
        (Summary(n=5, mean=1e-300, stdev=1e-300), Summary(n=5, mean=2e-300, stdev=1e-300)),
        (Summary(n=5, mean=5e-324, stdev=1.0), Summary(n=5, mean=1.0, stdev=1.0)),
        (Summary(n=5, mean=1e300, stdev=1e250), Summary(n=5, mean=1.1e300, stdev=1e250)),
        (Summary(n=5, mean=1e308, stdev=1e308), Summary(n=5, mean=-1e308, stdev=1e308)),
    ],
)
def test_summaries_near_the_limits_of_a_double_compare(base: Summary, cont: Summary) -> None:
    """Found by tests/server/test_hostile_runs.py: squares of stdevs and means overflowed or
    underflowed to zero (OverflowError, ZeroDivisionError: a 500 on /compare)."""
    result = compare_samples([], [], baseline_summary=base, contender_summary=cont)
    assert result.basis == "summary" and 0.0 <= result.p_value <= 1.0
    scaled = compare_samples(
        [],
        [],
        baseline_summary=Summary(n=5, mean=100.0, stdev=1.0),
        contender_summary=Summary(n=5, mean=110.0, stdev=1.0),
    )
    big = compare_samples(
        [],
        [],
        baseline_summary=Summary(n=5, mean=100e250, stdev=1e250),
        contender_summary=Summary(n=5, mean=110e250, stdev=1e250),
    )
    assert (big.verdict, big.p_value) == (scaled.verdict, pytest.approx(scaled.p_value))
