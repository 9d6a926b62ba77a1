"""Weighted order statistics of op(x_k, y_l) without listing them, against listing them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perffarm.analysis.selection import weighted_select


def _listed(x, y, op, wx, wy, reach) -> float:
    with np.errstate(over="ignore", under="ignore"):
        values = op(np.asarray(x)[:, None], np.asarray(y)[None, :]).ravel()
    weights = (np.asarray(wx, dtype=float)[:, None] * np.asarray(wy, dtype=float)[None, :]).ravel()
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    reached = np.flatnonzero(cumulative >= reach)
    return float(values[order][reached[0]] if reached.size else values[order][-1])


values = st.one_of(st.floats(0.5, 2.0), st.sampled_from([1.0, 1.25, 1.5]), st.floats(1e-300, 1e300))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    x=st.lists(values, min_size=1, max_size=40),
    y=st.lists(values, min_size=1, max_size=40),
    wx=st.lists(st.integers(0, 5), min_size=40, max_size=40),
    wy=st.lists(st.integers(0, 5), min_size=40, max_size=40),
    op=st.sampled_from([np.subtract, np.divide]),
    share=st.floats(0.0, 1.0),
)
def test_small_matrices_equal_the_listed_answer(x, y, wx, wy, op, share) -> None:
    # Whole-number weights: every sum is exact, so any order of summing agrees.
    x = np.sort(np.array(x))
    y = np.array(y)
    wx, wy = np.array(wx[: x.size], dtype=float), np.array(wy[: y.size], dtype=float)
    total = float(wx.sum() * wy.sum())
    reach = max(1.0, np.floor(share * total))
    expected = _listed(x, y, op, wx, wy, reach)
    assert weighted_select(x, y, op, wx, wy, reach) == expected


@pytest.mark.parametrize("kind", ["noise", "ties"])
def test_large_matrices_equal_the_listed_answer(kind: str) -> None:
    # Beyond what is listed at once: pivots narrow the values in question first.
    rng = np.random.default_rng(8)
    x, y = rng.lognormal(0, 0.3, 700), rng.lognormal(0.1, 0.3, 500)
    if kind == "ties":
        x, y = np.round(x, 1), np.round(y, 1)
    x = np.sort(x)
    wx, wy = rng.integers(0, 4, x.size).astype(float), rng.integers(0, 4, y.size).astype(float)
    total = wx.sum() * wy.sum()
    for reach in (1.0, np.floor(total * 0.005), np.floor(total / 2), total):
        for op in (np.subtract, np.divide):
            assert weighted_select(x, y, op, wx, wy, reach) == _listed(x, y, op, wx, wy, reach)
    ones_x, ones_y = np.ones(x.size), np.ones(y.size)
    differences = np.sort((x[:, None] - y[None, :]).ravel())
    for rank in (0, 1234, differences.size // 2, differences.size - 1):
        found = weighted_select(x, y, np.subtract, ones_x, ones_y, rank + 1, seed=rank)
        assert found == differences[rank]
