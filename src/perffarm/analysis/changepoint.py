"""Change points of a series: E-divisive means proposes, a t-test disposes.

The approach is the one MongoDB published and Apache Otava (hunter) uses: the E-divisive
statistic (an energy distance between the points before and after a split, weighted as the
q-statistic of Matteson & James) picks the most likely split of a segment, and a two-sample
t-test between the two sides decides whether it is real. No permutation test: the answer
depends on the data only, so the same history always gives the same alerts.

Two passes keep it fast and strict:

- The *weak* pass slides overlapping windows (``window`` points, half a window apart) over
  each segment of the series and runs E-divisive recursively inside every window, keeping
  each split whose t-test passes a lenient p-value. A window costs O(window²), so a series
  costs O(n·window), and a window's candidates depend only on the values inside it.
- The *strict* pass looks at all candidates together. Each is tested between its neighbours
  (at most ``window`` points on each side, so a slow drift far away cannot make it
  significant); the weakest failing candidate is dropped, its neighbours re-tested, until
  every survivor has p ≤ ``p_value`` and a relative change of mean ≥ ``min_magnitude``.
  Each survivor is then placed at the least-squares split between its neighbours.

Where perffarm departs from Otava, each time to cry wolf less (benchmarks/changepoint_quality.py
measures it):

- the t-test pools the variance of both sides (Student's, not Welch's), so that a side of
  three points that happen to agree cannot make a certain "step" out of noise;
- the p-value is corrected (Bonferroni) for the split having been chosen as the best of all
  the positions in the tested span;
- isolated outliers (one or two wild values, see ``_clean``) are replaced before testing.

Appending points changes only the windows that reach the end of the series (and the
outlier judgement of the last few points), so ``update`` re-runs E-divisive on those few
windows and then the strict pass, which is cheap (each test is O(1) from prefix sums): the
result is identical to a full detection on the same values.

Breaks ("a new normal starts here", a machine fingerprint change) cut the series into
segments that are analysed on their own: no window, test or outlier judgement spans a break.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_WINDOW = 50
DEFAULT_P_VALUE = 0.001
DEFAULT_MIN_MAGNITUDE = 0.02
# Lenient on purpose: the weak pass only proposes; a split tested on half a window often
# becomes clearly significant once the strict pass sees a whole window on each side.
DEFAULT_WEAK_P_VALUE = 0.05
# Fewer points than this on a side give a t-test too few degrees of freedom to mean much.
MIN_SEGMENT = 3
MAGNITUDE_CI_LEVEL = 0.95
# Outliers: points this many robust standard deviations from the medians of the this many
# points on either side (see _clean). Normal noise gets that far about once in 10^6 points.
OUTLIER_REACH = 5
OUTLIER_LIMIT = 5.0


@dataclass(frozen=True)
class DetectorSettings:
    """The knobs of the detector; the defaults are the ones the server uses."""

    window: int = DEFAULT_WINDOW
    p_value: float = DEFAULT_P_VALUE
    min_magnitude: float = DEFAULT_MIN_MAGNITUDE
    weak_p_value: float = DEFAULT_WEAK_P_VALUE

    def __post_init__(self) -> None:
        if self.window < 4 * MIN_SEGMENT:
            raise ValueError(f"the window must be at least {4 * MIN_SEGMENT} points")
        if not 0 < self.p_value < 1:
            raise ValueError("the p-value threshold must be between 0 and 1")
        if not 0 < self.weak_p_value < 1:
            raise ValueError("the weak-pass p-value must be between 0 and 1")
        if self.min_magnitude < 0:
            raise ValueError("the minimum magnitude cannot be negative")


@dataclass(frozen=True)
class ChangePoint:
    """A change of level: ``index`` is the first point of the new level."""

    index: int
    magnitude: float
    """Relative change of the mean, ``mean_after / mean_before - 1`` (inf if before is 0)."""
    magnitude_ci: tuple[float, float] | None
    """95% interval of the magnitude: the t interval of the difference over the old mean."""
    p_value: float
    mean_before: float
    mean_after: float
    stdev_before: float
    stdev_after: float
    n_before: int
    """How many points before the change the test used (at most one window)."""
    n_after: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "magnitude": _json_float(self.magnitude),
            "magnitude_ci": (
                [_json_float(v) for v in self.magnitude_ci] if self.magnitude_ci else None
            ),
            "p_value": self.p_value,
            "mean_before": self.mean_before,
            "mean_after": self.mean_after,
            "stdev_before": self.stdev_before,
            "stdev_after": self.stdev_after,
            "n_before": self.n_before,
            "n_after": self.n_after,
        }


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


# -- the weak pass: E-divisive inside one window ---------------------------------------------


def _t_test_p(n1: int, m1: float, v1: float, n2: int, m2: float, v2: float) -> float:
    """Two-sided p-value of Student's two-sample t-test from each side's n, mean, variance.

    The pooled variance is deliberate: a side of a few points that happen to agree would
    make Welch's test see a certain step in noise; pooling lets the short side borrow the
    long side's (better) estimate of the noise.
    """
    from scipy import special  # scipy costs 0.3-0.7 s to import: only when used

    df = n1 + n2 - 2
    if n1 < 1 or n2 < 1 or df < 1:
        return 1.0
    pooled = ((n1 - 1) * v1 + (n2 - 1) * v2) / df
    se2 = pooled * (1.0 / n1 + 1.0 / n2)
    if se2 <= 0.0:
        # Two constant sides: a step is certain, equal levels certainly are not one.
        return 1.0 if m1 == m2 else 0.0
    t = abs(m2 - m1) / math.sqrt(se2)
    return float(2.0 * special.stdtr(df, -t))


def _window_splits(x: np.ndarray, weak_p: float) -> list[tuple[int, float]]:
    """Recursive E-divisive over one window: (position in window, weak p) of each split."""
    n = x.size
    if n < 2 * MIN_SEGMENT:
        return []
    distances = np.abs(x[:, None] - x[None, :])
    # cum[i, j] = sum of distances[:i, :j]; any block sum is then four look-ups.
    cum = np.zeros((n + 1, n + 1))
    cum[1:, 1:] = distances.cumsum(axis=0).cumsum(axis=1)
    diag = np.diagonal(cum)
    found: list[tuple[int, float]] = []
    pending = [(0, n)]
    while pending:
        a, b = pending.pop()
        if b - a < 2 * MIN_SEGMENT:
            continue
        taus = np.arange(a + MIN_SEGMENT, b - MIN_SEGMENT + 1)
        n_left = (taus - a).astype(float)
        n_right = (b - taus).astype(float)
        between = cum[taus, b] - cum[a, b] - diag[taus] + cum[a, taus]
        within_left = diag[taus] - cum[a, taus] - cum[taus, a] + cum[a, a]
        within_right = cum[b, b] - cum[taus, b] - cum[b, taus] + diag[taus]
        # Full symmetric blocks count each pair twice, hence n(n-1) and not C(n, 2).
        energy = (
            2.0 * between / (n_left * n_right)
            - within_left / (n_left * (n_left - 1))
            - within_right / (n_right * (n_right - 1))
        )
        q = n_left * n_right / (n_left + n_right) * energy
        tau = int(taus[int(np.argmax(q))])
        left, right = x[a:tau], x[tau:b]
        p = _t_test_p(
            left.size,
            float(left.mean()),
            float(left.var(ddof=1)),
            right.size,
            float(right.mean()),
            float(right.var(ddof=1)),
        )
        if p <= weak_p:
            found.append((tau, p))
            pending.append((a, tau))
            pending.append((tau, b))
    return found


def _window_starts(start: int, end: int, window: int) -> list[int]:
    """Starts of the windows over [start, end): half a window apart, each adding new points.

    A window is kept when it reaches past the end of the one before it, so the set for a
    grown segment extends the set for the shorter one: windows that ended before the old
    end keep their start and their content, which is what makes ``update`` exact.
    """
    stride = window // 2
    starts: list[int] = []
    st = start
    while st < end:
        if st == start or end > st - stride + window:
            if end - st >= 2 * MIN_SEGMENT or st == start:
                starts.append(st)
        else:
            break
        st += stride
    return starts


# -- outliers ----------------------------------------------------------------------------------


def _clean(x: np.ndarray) -> np.ndarray:
    """``x`` with isolated outliers replaced by the median of the nearer side.

    A benchmark that hits a busy moment gives one or two wild values; the t-tests would see
    a change of level in a cluster of them. A point is an outlier when it is more than
    OUTLIER_LIMIT robust standard deviations away from *both* the median of the
    OUTLIER_REACH points before it and the median of the OUTLIER_REACH points after it: the
    first point of a real step agrees with the points after it, so steps are never touched.
    The first and last OUTLIER_REACH points have no full neighbourhood and stay as they are.
    """
    k = OUTLIER_REACH
    out = x.copy()
    if x.size < 2 * k + 1:
        return out
    views = np.lib.stride_tricks.sliding_window_view(x, k)
    medians = np.median(views, axis=1)
    centre = np.arange(k, x.size - k)
    before, after = centre - k, centre + 1
    deviations = np.concatenate(
        (
            np.abs(views[before] - medians[before, None]),
            np.abs(views[after] - medians[after, None]),
        ),
        axis=1,
    )
    # 1.4826 · MAD estimates the standard deviation of normal noise.
    scale = 1.4826 * np.median(deviations, axis=1)
    to_before = np.abs(x[centre] - medians[before])
    to_after = np.abs(x[centre] - medians[after])
    outlier = np.minimum(to_before, to_after) > OUTLIER_LIMIT * scale
    replacement = np.where(to_before <= to_after, medians[before], medians[after])
    out[centre[outlier]] = replacement[outlier]
    return out


# -- the strict pass ---------------------------------------------------------------------------


class _Moments:
    """Prefix sums of the (centred) values: mean and variance of any slice in O(1)."""

    def __init__(self, values: np.ndarray, center: float) -> None:
        shifted = values - center
        self.center = center
        self.s1 = np.concatenate(([0.0], np.cumsum(shifted)))
        self.s2 = np.concatenate(([0.0], np.cumsum(shifted * shifted)))

    def extend(self, new_values: np.ndarray, *, start: int | None = None) -> None:
        """Append values; with ``start``, first drop the values from that index on."""
        if start is not None:
            self.s1 = self.s1[: start + 1]
            self.s2 = self.s2[: start + 1]
        shifted = new_values - self.center
        # Accumulating on from the last sum adds in the same order as one cumsum over the
        # whole series would, so appended chunks give bit-identical sums (and results).
        self.s1 = np.concatenate((self.s1[:-1], np.cumsum(np.r_[self.s1[-1], shifted])))
        self.s2 = np.concatenate((self.s2[:-1], np.cumsum(np.r_[self.s2[-1], shifted * shifted])))

    def stats(self, a: int, b: int) -> tuple[int, float, float]:
        """(n, mean, variance with ddof=1) of values[a:b]."""
        n = b - a
        total = float(self.s1[b] - self.s1[a])
        mean = total / n
        if n < 2:
            return n, mean + self.center, 0.0
        squares = float(self.s2[b] - self.s2[a])
        variance = max((squares - total * mean) / (n - 1), 0.0)
        return n, mean + self.center, variance


def _relative(before: float, after: float) -> float:
    if before == 0.0:
        return 0.0 if after == 0.0 else math.copysign(math.inf, after)
    return (after - before) / abs(before)


def _strict(
    candidates: list[int],
    start: int,
    end: int,
    moments: _Moments,
    settings: DetectorSettings,
    tests: dict[tuple[int, int, int], tuple[float, float]] | None = None,
) -> list[ChangePoint]:
    """Drop the weakest failing candidate until every one left passes; describe survivors.

    ``tests`` caches (p, magnitude) by (left edge, split, right edge) between calls; the
    caller drops the entries whose span holds values that changed. On return it holds only
    the entries this call used, so it does not grow with the history.
    """
    cache = tests if tests is not None else {}
    used: dict[tuple[int, int, int], tuple[float, float]] = {}
    count = len(candidates)
    if count == 0:
        return []
    window = settings.window
    position = list(candidates)
    prev = list(range(-1, count - 1))
    nxt = list(range(1, count + 1))
    alive = [True] * count
    version = [0] * count

    def bounds(i: int) -> tuple[int, int, int]:
        left_edge = position[prev[i]] if prev[i] >= 0 else start
        right_edge = position[nxt[i]] if nxt[i] < count else end
        c = position[i]
        return max(left_edge, c - window), c, min(right_edge, c + window)

    def test(i: int) -> tuple[float, float]:
        key = bounds(i)
        answer = cache.get(key)
        if answer is None:
            lo, c, hi = key
            n1, m1, v1 = moments.stats(lo, c)
            n2, m2, v2 = moments.stats(c, hi)
            p = _adjusted(_t_test_p(n1, m1, v1, n2, m2, v2), n1 + n2)
            answer = (p, _relative(m1, m2))
        used[key] = answer
        return answer

    def failing_key(i: int) -> tuple[int, float] | None:
        p, magnitude = test(i)
        if p > settings.p_value:
            return (0, -p)  # the least significant goes first
        if abs(magnitude) < settings.min_magnitude:
            return (1, abs(magnitude))  # then the smallest change
        return None

    heap: list[tuple[int, float, int, int, int]] = []

    def push(i: int) -> None:
        version[i] += 1
        key = failing_key(i)
        if key is not None:
            heapq.heappush(heap, (key[0], key[1], position[i], i, version[i]))

    for i in range(count):
        push(i)
    while heap:
        _, _, _, i, seen = heapq.heappop(heap)
        if not alive[i] or seen != version[i]:
            continue
        alive[i] = False
        left, right = prev[i], nxt[i]
        if left >= 0:
            nxt[left] = right
        if right < count:
            prev[right] = left
        for neighbour in (left, right):
            if 0 <= neighbour < count:
                push(neighbour)

    survivors = [i for i in range(count) if alive[i]]
    for i in survivors:
        refined = _refine(*bounds(i), moments)
        if refined != position[i]:
            before, position[i] = position[i], refined
            # Moving a change point changes its neighbours' sides too: all three must pass.
            affected = [j for j in (prev[i], i, nxt[i]) if 0 <= j < count]
            if any(failing_key(j) is not None for j in affected):
                position[i] = before
    if tests is not None:
        tests.clear()
        tests.update(used)
    return [_describe(*bounds(i), moments) for i in survivors]


def _refine(lo: int, c: int, hi: int, moments: _Moments) -> int:
    """The best split of [lo, hi) for a shift of mean (most between-sides variance).

    E-divisive finds the step inside a window of half-size sides; with the whole span
    between the neighbouring change points, the least-squares split places it more exactly.
    """
    splits = np.arange(lo + MIN_SEGMENT, hi - MIN_SEGMENT + 1)
    if splits.size == 0:
        return c
    n_left = (splits - lo).astype(float)
    n_right = (hi - splits).astype(float)
    left_sum = moments.s1[splits] - moments.s1[lo]
    right_sum = moments.s1[hi] - moments.s1[splits]
    contrast = (
        n_left * n_right / (n_left + n_right) * (left_sum / n_left - right_sum / n_right) ** 2
    )
    return int(splits[int(np.argmax(contrast))])


def _adjusted(p: float, span: int) -> float:
    """The t-test's p-value, corrected for having picked the best of the span's splits.

    The split is where the data looked most different, so the plain p-value is optimistic;
    Bonferroni over the positions the split could have taken keeps p honest (a little
    conservative: neighbouring splits are strongly correlated).
    """
    return min(1.0, p * max(span - 2 * MIN_SEGMENT + 1, 1) * SELECTION_FACTOR)


SELECTION_FACTOR = 1.0


def _describe(lo: int, c: int, hi: int, moments: _Moments) -> ChangePoint:
    from scipy import special  # scipy costs 0.3-0.7 s to import: only when used

    n1, m1, v1 = moments.stats(lo, c)
    n2, m2, v2 = moments.stats(c, hi)
    p = _adjusted(_t_test_p(n1, m1, v1, n2, m2, v2), n1 + n2)
    magnitude = _relative(m1, m2)
    ci: tuple[float, float] | None = None
    df = n1 + n2 - 2
    if m1 != 0.0 and df >= 1:
        pooled = ((n1 - 1) * v1 + (n2 - 1) * v2) / df
        se = math.sqrt(pooled * (1.0 / n1 + 1.0 / n2))
        half = float(special.stdtrit(df, (1 + MAGNITUDE_CI_LEVEL) / 2)) * se
        diff = m2 - m1
        ci = ((diff - half) / abs(m1), (diff + half) / abs(m1))
    return ChangePoint(
        index=c,
        magnitude=magnitude,
        magnitude_ci=ci,
        p_value=p,
        mean_before=m1,
        mean_after=m2,
        stdev_before=math.sqrt(v1),
        stdev_after=math.sqrt(v2),
        n_before=n1,
        n_after=n2,
    )


def _merge_close(found: dict[int, float]) -> list[int]:
    """One candidate per cluster of splits closer than MIN_SEGMENT: the most significant.

    Overlapping windows often see the same step one point apart; keeping both would leave a
    sliver segment between them that no test can judge.
    """
    kept: list[int] = []
    cluster: list[int] = []
    for index in sorted(found):
        if cluster and index - cluster[-1] >= MIN_SEGMENT:
            kept.append(min(cluster, key=lambda i: (found[i], i)))
            cluster = []
        cluster.append(index)
    if cluster:
        kept.append(min(cluster, key=lambda i: (found[i], i)))
    return kept


# -- the detector and its incremental state --------------------------------------------------


@dataclass
class ChangePointState:
    """Everything ``update`` needs to add points without re-analysing the whole history."""

    settings: DetectorSettings = field(default_factory=DetectorSettings)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cleaned: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """The values the tests see: ``values`` with isolated outliers replaced."""
    segment_starts: list[int] = field(default_factory=lambda: [0])
    change_points: list[ChangePoint] = field(default_factory=list)
    # (window start) -> splits found in it (global index, weak p), for the last segment only:
    # earlier segments never change again, their strict results are kept in _frozen.
    _windows: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    _window_ends: dict[int, int] = field(default_factory=dict)
    _frozen: list[ChangePoint] = field(default_factory=list)
    _moments: _Moments | None = None
    # The strict pass's t-tests of the last segment, by (left edge, split, right edge).
    _tests: dict[tuple[int, int, int], tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_values(
        cls,
        values: Sequence[float] | np.ndarray,
        *,
        breaks: Iterable[int] = (),
        settings: DetectorSettings | None = None,
    ) -> ChangePointState:
        """Analyse ``values`` (breaks are indices where a new segment starts)."""
        array = _as_values(values)
        state = cls(settings=settings or DetectorSettings())
        edges = [0, *_check_breaks(breaks, array.size), array.size]
        for first, (lo, hi) in enumerate(itertools.pairwise(edges)):
            update(state, array[lo:hi], new_segment=first > 0)
        return state

    @property
    def breaks(self) -> list[int]:
        return self.segment_starts[1:]

    def __len__(self) -> int:
        return int(self.values.size)


def _as_values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError("the series has a value that is not a finite number")
    return array


def _check_breaks(breaks: Iterable[int], n: int) -> list[int]:
    cuts = sorted({int(b) for b in breaks})
    for cut in cuts:
        if cut < 0 or cut > n:
            raise ValueError(f"break at {cut} is outside the series (0..{n})")
    return [cut for cut in cuts if 0 < cut < n]


def update(
    state: ChangePointState,
    new_values: Sequence[float] | np.ndarray,
    *,
    new_segment: bool = False,
) -> list[ChangePoint]:
    """Append ``new_values`` (optionally starting a new segment) and return all change points.

    Only the windows that reach the end of the series are analysed again; the result equals
    ``detect`` on the whole series with the same breaks.
    """
    added = _as_values(new_values)
    settings = state.settings
    old_n = state.values.size
    if state._moments is None:
        if added.size == 0:
            return state.change_points
        # Centring on a typical value keeps the prefix sums of squares precise.
        state._moments = _Moments(np.zeros(0), float(added[0]))
    if new_segment and old_n > 0 and state.segment_starts[-1] != old_n:
        state._frozen = [*state._frozen, *_last_segment_points(state)]
        state.segment_starts.append(old_n)
        state._windows.clear()
        state._window_ends.clear()
        state._tests.clear()
    state.values = np.concatenate((state.values, added))
    n = state.values.size
    start = state.segment_starts[-1]
    # The last OUTLIER_REACH points could not be judged before; now they (and the new ones)
    # are, from a neighbourhood that never reaches across the segment's start.
    dirty = max(start, old_n - OUTLIER_REACH)
    context = max(start, dirty - OUTLIER_REACH)
    recleaned = _clean(state.values[context:n])[dirty - context :]
    state.cleaned = np.concatenate((state.cleaned[:dirty], recleaned))
    state._moments.extend(recleaned, start=dirty)
    state._tests = {key: value for key, value in state._tests.items() if key[2] <= dirty}
    for st in _window_starts(start, n, settings.window):
        end = min(st + settings.window, n)
        if state._window_ends.get(st) == end and end <= dirty:
            continue  # same window, same values, same splits
        found = _window_splits(state.cleaned[st:end], settings.weak_p_value)
        state._windows[st] = [(st + position, p) for position, p in found]
        state._window_ends[st] = end
    state.change_points = [*state._frozen, *_last_segment_points(state)]
    return state.change_points


def _last_segment_points(state: ChangePointState) -> list[ChangePoint]:
    best: dict[int, float] = {}
    for splits in state._windows.values():
        for index, p in splits:
            if p < best.get(index, math.inf):
                best[index] = p
    assert state._moments is not None
    end = state.values.size
    # A split can leave no fewer than MIN_SEGMENT points after it, so a step that arrived
    # with fewer new points would be pinned too early. Waiting for one point more than that
    # gives an alert the right commit from the start, instead of one that moves.
    candidates = [index for index in _merge_close(best) if index < end - MIN_SEGMENT]
    return _strict(
        candidates,
        state.segment_starts[-1],
        end,
        state._moments,
        state.settings,
        state._tests,
    )


def detect(
    values: Sequence[float] | np.ndarray,
    *,
    window: int = DEFAULT_WINDOW,
    p_value: float = DEFAULT_P_VALUE,
    min_magnitude: float = DEFAULT_MIN_MAGNITUDE,
    breaks: Iterable[int] = (),
    weak_p_value: float = DEFAULT_WEAK_P_VALUE,
) -> list[ChangePoint]:
    """Change points of ``values`` with p ≤ ``p_value`` and |magnitude| ≥ ``min_magnitude``.

    ``breaks`` are indices where a new segment starts: nothing is reported across them.
    """
    settings = DetectorSettings(
        window=window, p_value=p_value, min_magnitude=min_magnitude, weak_p_value=weak_p_value
    )
    return ChangePointState.from_values(values, breaks=breaks, settings=settings).change_points
