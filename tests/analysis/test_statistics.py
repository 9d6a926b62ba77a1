"""Summary statistics of samples."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from perffarm.analysis.statistics import basic_summary, summarize


def test_known_values():
    summary = summarize([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert summary.n == 10
    assert summary.mean == pytest.approx(5.5)
    assert summary.median == pytest.approx(5.5)
    assert summary.stdev == pytest.approx(3.0276503540974917)
    assert summary.cv == pytest.approx(3.0276503540974917 / 5.5)
    # t(0.975, 9) = 2.2621571627409915
    half = 2.2621571627409915 * 3.0276503540974917 / np.sqrt(10)
    assert summary.mean_ci.low == pytest.approx(5.5 - half)
    assert summary.mean_ci.high == pytest.approx(5.5 + half)
    # Binomial(10, 1/2): the 95% order-statistic interval is x(2)..x(9).
    assert (summary.median_ci.low, summary.median_ci.high) == (2.0, 9.0)
    assert summary.outliers == 0


def test_median_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    covered = 0
    trials = 400
    for _ in range(trials):
        summary = summarize(rng.lognormal(0.0, 0.5, size=30))
        covered += summary.median_ci.low <= 1.0 <= summary.median_ci.high
    assert 0.92 <= covered / trials <= 0.995


def test_outliers_and_instability_warnings():
    samples = [1.0] * 9 + [1.01] * 9 + [5.0, 6.0, 7.0]
    summary = summarize(samples)
    assert summary.outliers == 3
    assert any("outliers" in warning for warning in summary.warnings)
    assert any("unstable" in warning for warning in summary.warnings)


def test_few_and_no_samples():
    one = summarize([2.5])
    assert (one.n, one.median, one.stdev, one.mean_ci) == (1, 2.5, None, None)
    assert any("only 1 sample" in warning for warning in one.warnings)
    assert summarize([]).n == 0


@pytest.mark.parametrize(
    "samples",
    [[2.5], [3.0, 1.0], [1.0, 2.0, 3.0, 4.0], [0.1] * 7 + [0.3], list(range(1, 102)), [-5.0, 5.0]],
)
def test_the_basic_summary_is_the_summary_s_own_fields(samples: list[float]) -> None:
    basic = basic_summary(samples)
    summary = summarize(samples)
    assert basic == (
        summary.n,
        summary.mean,
        summary.median,
        summary.stdev,
        summary.min,
        summary.max,
    )
    assert basic.n == len(samples)
    assert basic.mean == statistics.fmean(samples)
    assert basic.median == statistics.median(samples)
    assert (basic.min, basic.max) == (min(samples), max(samples))
    if len(samples) > 1:
        assert basic.stdev == pytest.approx(statistics.stdev(samples), rel=1e-15)
    else:
        assert basic.stdev is None


def test_the_basic_summary_of_nothing_and_of_extreme_values() -> None:
    assert basic_summary([]) == (0, None, None, None, None, None)
    huge = basic_summary([1e308, 1e308, 1e308])
    assert huge.mean == 1e308 and huge.stdev == 0.0
    assert basic_summary(np.array([1.0, 3.0])).median == 2.0
    assert all(type(value) is float for value in basic_summary(np.array([1.0, 3.0]))[1:])


@pytest.mark.parametrize(
    "samples",
    [
        [1.7976931348623157e308, -1.7976931348623157e308],
        [1.7976931348623157e308, -1.7976931348623157e308, 5e-324],
        [1e308, -1e308, 1e308, -1e308, 0.0, 1.0],
    ],
)
def test_a_spread_beyond_a_float_leaves_the_figures_out_and_reads_back(
    samples: list[float],
) -> None:
    # Found by the terminal's hostile-text test (issue 17): the interval's ends overflowed,
    # a document kept them as null, and the stored run could not be read back.
    from perffarm.model import Result, RunDocument

    summary = summarize(samples)
    # What a float cannot hold is left out; what it can (a stdev of 1.8e308) is kept.
    for figure in (summary.stdev, summary.cv, summary.q1, summary.q3):
        assert figure is None or math.isfinite(figure)
    assert summary.mean_ci is None
    assert (summary.min, summary.max) == (min(samples), max(samples))
    run = RunDocument(
        project="p",
        machine="m",
        results=[Result(benchmark="b", metric="t", unit="s", samples=samples, summary=summary)],
    )
    assert RunDocument.from_json(run.to_json()).results[0].summary == summary


@pytest.mark.parametrize(
    "samples",
    [
        [1e308, 1.7976931348623157e308, 1.7976931348623157e308],
        [-1.7976931348623157e308, 1.7976931348623157e308],
        [1e200, -1e200, 3e200, 5e-324],
        [5e-324, -5e-324, 0.0, -0.0],
        [1.7976931348623157e308] * 7,
    ],
)
def test_samples_near_the_limits_of_a_double_give_finite_figures_or_none(
    samples: list[float],
) -> None:
    """Found by tests/server/test_hostile_runs.py: the mean's sum overflowed (a 500 at
    upload), a deviation or its square did (an infinite stdev the document cannot hold)."""
    basic = basic_summary(samples)
    assert basic.min <= basic.mean <= basic.max and basic.min <= basic.median <= basic.max
    summary = summarize(samples)  # the model refuses any figure that is not finite
    assert summary.mean == basic.mean and summary.stdev == basic.stdev
    if samples[0] == -1.7976931348623157e308:
        assert basic.stdev is None and summary.mean_ci is None
    if len(set(samples)) == 1:
        assert basic.stdev == 0.0 and summary.mean_ci is not None
    assert basic_summary([1e200, 3e200]).stdev == pytest.approx(
        statistics.stdev([1.0, 3.0]) * 1e200
    )
