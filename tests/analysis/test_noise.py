"""Noise scores and the power analysis behind the recommended repetitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perffarm.analysis.noise import noise_score, recommended_repetitions


def test_run_to_run_noise_estimates_the_noise_and_ignores_a_step() -> None:
    rng = np.random.default_rng(0)
    quiet = 100 * (1 + rng.normal(0, 0.02, 2000))
    report = noise_score(quiet)
    assert report.cv == pytest.approx(0.02, rel=0.1)
    assert report.run_to_run == pytest.approx(0.02, rel=0.1)
    assert report.level == "moderate"
    stepped = np.concatenate((quiet[:1000], quiet[1000:] * 1.5))
    stepped_report = noise_score(stepped)
    assert stepped_report.cv > 0.15  # the step counts as spread for the CV ...
    assert stepped_report.run_to_run == pytest.approx(0.022, rel=0.2)  # ... not point to point
    assert any("changes of level" in w for w in stepped_report.warnings)


def test_levels() -> None:
    rng = np.random.default_rng(1)
    assert noise_score(100 + rng.normal(0, 0.2, 100)).level == "quiet"
    assert noise_score(100 + rng.normal(0, 10, 100)).level == "noisy"
    assert noise_score([]).level == "unknown"


def test_recommended_repetitions_follow_the_stated_formula() -> None:
    # 2 (z_0.995 + z_0.8)^2 (cv/effect)^2 / (3/pi) with cv = effect: 2 * 3.4172^2 / 0.9549
    assert recommended_repetitions(0.02, effect=0.02) == math.ceil(
        2 * (2.5758293 + 0.8416212) ** 2 / (3 / math.pi)
    )
    assert recommended_repetitions(0.04) > 3.9 * recommended_repetitions(0.02) - 4
    assert recommended_repetitions(0.0001) == 5  # never fewer than Mann-Whitney needs
    with pytest.raises(ValueError):
        recommended_repetitions(0.01, effect=0)


def test_a_series_report_recommends_repetitions_for_its_noise() -> None:
    series = 100 * (1 + np.random.default_rng(2).normal(0, 0.01, 500))
    report = noise_score(series)
    assert report.recommended_repetitions == recommended_repetitions(report.run_to_run)
    assert 5 <= report.recommended_repetitions <= 10
