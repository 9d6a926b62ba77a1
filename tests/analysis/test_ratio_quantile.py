"""The quantile search of the ratio interval against the full sort."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perffarm.analysis.bootstrap import exact_ratio_ci_rows, ratio_ci_rows, ratio_ci_sorted
from tests.analysis.support import assert_identical

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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_row_pairs(), st.sampled_from([0.99, 0.95, 0.9, 0.5]))
def test_quantile_search_equals_the_full_sort(
    pair: tuple[np.ndarray, np.ndarray], level: float
) -> None:
    base, cont = pair
    expected = ratio_ci_sorted(base, cont, level=level)
    actual = exact_ratio_ci_rows(base, cont, level=level)
    assert_identical(actual[0], expected[0])
    assert_identical(actual[1], expected[1])


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
    lows, highs = ratio_ci_rows(
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
        low, high = ratio_ci_sorted(b[None, :], c[None, :], level=level)
        assert_identical(lows[i : i + 1], low)
        assert_identical(highs[i : i + 1], high)
