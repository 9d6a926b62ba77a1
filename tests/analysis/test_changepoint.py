"""E-divisive change-point detection: steps, noise, breaks, and the incremental state."""

from __future__ import annotations

import numpy as np
import pytest

from perffarm.analysis.changepoint import (
    ChangePointState,
    DetectorSettings,
    detect,
    update,
)


def _noise(seed: int, n: int, level: float = 100.0, cv: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).normal(level, level * cv, n)


def _step_series(seed: int, cv: float = 0.01) -> np.ndarray:
    """120 points, a 10% step up after 60."""
    return np.concatenate((_noise(seed, 60, 100.0, cv), _noise(seed + 1, 60, 110.0, cv)))


@pytest.mark.parametrize("seed", range(5))
def test_a_ten_percent_step_after_sixty_points_is_found_once(seed: int) -> None:
    points = detect(_step_series(seed))
    assert len(points) == 1
    (point,) = points
    assert abs(point.index - 60) <= 1
    assert point.magnitude == pytest.approx(0.10, abs=0.01)
    assert point.magnitude_ci[0] < point.magnitude < point.magnitude_ci[1]
    assert point.magnitude_ci[0] > 0.08
    assert point.p_value < 1e-10
    assert point.mean_before == pytest.approx(100.0, abs=1.0)
    assert point.mean_after == pytest.approx(110.0, abs=1.0)


@pytest.mark.parametrize("seed", range(5))
def test_noise_alone_gives_no_change_point(seed: int) -> None:
    for cv in (0.005, 0.02, 0.05):
        assert detect(_noise(seed, 500, cv=cv)) == [], cv


def test_a_step_down_is_a_negative_magnitude() -> None:
    series = np.concatenate((_noise(1, 80, 100.0), _noise(2, 80, 80.0)))
    (point,) = detect(series)
    assert point.index == 80
    assert point.magnitude == pytest.approx(-0.2, abs=0.01)


def test_two_steps_are_both_found() -> None:
    series = np.concatenate((_noise(3, 100, 100.0), _noise(4, 100, 108.0), _noise(5, 100, 95.0)))
    indices = [point.index for point in detect(series)]
    assert len(indices) == 2
    assert abs(indices[0] - 100) <= 1 and abs(indices[1] - 200) <= 1


def test_steps_below_the_minimum_magnitude_are_not_reported() -> None:
    series = np.concatenate((_noise(6, 100, 100.0, 0.001), _noise(7, 100, 101.0, 0.001)))
    assert detect(series) == []  # 1% < the default 2%
    (point,) = detect(series, min_magnitude=0.005)
    assert point.index == 100


def test_a_break_suppresses_a_step_at_the_break() -> None:
    series = _step_series(8)
    assert [p.index for p in detect(series)] == [60]
    assert detect(series, breaks=[60]) == []
    # A break elsewhere does not hide the step: each segment is analysed on its own.
    assert [p.index for p in detect(series, breaks=[30])] == [60]


def test_segments_between_breaks_keep_their_own_steps() -> None:
    series = np.concatenate((_step_series(9), _step_series(11) * 2))
    indices = [p.index for p in detect(series, breaks=[120])]
    assert indices == [60, 180]


def test_constant_series_and_a_perfect_step() -> None:
    assert detect([5.0] * 100) == []
    (point,) = detect([5.0] * 50 + [6.0] * 50)
    assert point.index == 50 and point.p_value == 0.0 and point.magnitude == pytest.approx(0.2)


def test_short_series_give_no_change_point_and_no_error() -> None:
    assert detect([]) == []
    assert detect([1.0]) == []
    assert detect([1.0, 2.0, 3.0]) == []


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        detect([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="outside"):
        detect([1.0] * 10, breaks=[11])
    with pytest.raises(ValueError, match="window"):
        DetectorSettings(window=4)


def _long_series(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    levels = np.repeat([100.0, 106.0, 97.0, 97.0, 120.0, 110.0], 150)
    values = levels * (1 + rng.normal(0, 0.01, levels.size))
    # Outliers, some in pairs, so that the incremental path re-judges them near the tail.
    for index in (40, 41, 222, 420, 423, 590, 700):
        values[index] *= 1.6
    return values


@pytest.mark.parametrize("chunk", [1, 7, 50])
def test_incremental_updates_equal_a_full_detection(chunk: int) -> None:
    series = _long_series(12)
    state = ChangePointState.from_values(series[:200])
    for start in range(200, series.size, chunk):
        update(state, series[start : start + chunk])
    assert state.change_points == detect(series)
    assert [p.index for p in state.change_points] == [150, 300, 600, 750]


@pytest.mark.parametrize("seed", range(3))
def test_a_step_arriving_point_by_point_is_reported_once_at_its_place(seed: int) -> None:
    series = _step_series(seed)
    state = ChangePointState.from_values(series[:60])
    seen = []
    for value in series[60:]:
        seen.append(tuple(p.index for p in update(state, [value])))
    # Nothing while the new level is too short to place, then the right index, never moved.
    first = next(i for i, found in enumerate(seen) if found)
    assert first <= 5
    assert set(seen[:first]) == {()}
    assert set(seen[first:]) == {(60,)}


def test_incremental_update_with_a_new_segment_equals_full_detection_with_the_break() -> None:
    series = _long_series(13)
    state = ChangePointState.from_values(series[:450])
    update(state, series[450:], new_segment=True)
    assert state.breaks == [450]
    assert state.change_points == detect(series, breaks=[450])


def test_isolated_outliers_do_not_make_change_points() -> None:
    series = _noise(15, 400, cv=0.005)
    series[[100, 102, 250, 251, 253]] *= 1.4  # a close pair and a close triple of outliers
    assert detect(series) == []
    # The same cluster lasting longer is a real, if short, change of level.
    series[250:265] = series[250:265] * 1.4
    assert [p.index for p in detect(series)] == [250, 265]


def test_the_level_after_a_change_is_not_mistaken_for_outliers() -> None:
    rng = np.random.default_rng(16)
    series = np.concatenate((rng.normal(100, 0.5, 100), rng.normal(140, 0.5, 8)))
    (point,) = detect(series)  # eight new points: an alert, not eight outliers
    assert point.index == 100


def test_to_dict_is_json_ready() -> None:
    (point,) = detect(_step_series(14))
    data = point.to_dict()
    assert data["index"] == point.index
    assert isinstance(data["magnitude_ci"], list) and len(data["magnitude_ci"]) == 2


def _least_squares_split(values: np.ndarray, shortest: int = 3) -> int:
    """Where one shift of mean explains the most of ``values`` (written out plainly here)."""

    def explained(split: int) -> float:
        left, right = values[:split], values[split:]
        return len(left) * len(right) / len(values) * (left.mean() - right.mean()) ** 2

    return max(range(shortest, len(values) - shortest + 1), key=explained)


@pytest.mark.parametrize("seed", [10, 33, 45])
def test_a_step_is_placed_where_one_shift_of_mean_explains_most(seed: int) -> None:
    # Noisy steps whose windowed search lands a point or two off: the index is refined to
    # the least-squares split of the span it is tested on, exactly.
    series = np.concatenate((_noise(seed, 60, 100.0, 0.03), _noise(seed + 1000, 60, 110.0, 0.03)))
    state = ChangePointState.from_values(series)
    (point,) = state.change_points
    lo = point.index - point.n_before
    span = state.cleaned[lo : point.index + point.n_after]
    assert point.index == lo + _least_squares_split(span)


@pytest.mark.parametrize("seed", range(1, 4))
def test_the_p_value_is_the_t_test_corrected_for_every_split_it_could_have_chosen(
    seed: int,
) -> None:
    from scipy import stats

    # A step small against the noise, so that the p-value is far from 0.
    series = np.concatenate((_noise(seed, 60, 100.0, 0.05), _noise(seed + 1, 60, 108.0, 0.05)))
    state = ChangePointState.from_values(series)
    (point,) = state.change_points
    # The sides the point reports (at most a window's worth each), from the values tested.
    before = state.cleaned[point.index - point.n_before : point.index]
    after = state.cleaned[point.index : point.index + point.n_after]
    plain = stats.ttest_ind(before, after, equal_var=True).pvalue
    splits = point.n_before + point.n_after - 2 * 3 + 1  # each leaving three points a side
    assert 1e-13 < point.p_value < 1e-3
    assert point.p_value == pytest.approx(plain * splits, rel=1e-9)
