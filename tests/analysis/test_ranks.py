"""Rank statistics: the Mann-Whitney U test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from perffarm.analysis.ranks import mann_whitney, smallest_mann_whitney_p
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
