"""Summary statistics of samples."""

from __future__ import annotations

import numpy as np
import pytest

from perffarm.analysis.statistics import summarize


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
