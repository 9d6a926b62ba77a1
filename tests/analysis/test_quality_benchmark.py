"""The corpus and the scoring behind benchmarks/changepoint_quality.py: its figures rest on them."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from changepoint_quality import lookback_zscore, match, score
from corpus import (
    EDGE,
    MIN_GAP,
    Change,
    LabelledSeries,
    make_corpus,
    read_corpus,
    write_corpus,
)


def test_the_corpus_is_seeded_and_labelled(tmp_path: Path) -> None:
    corpus = make_corpus(40)
    assert [s.values for s in corpus] == [s.values for s in make_corpus(40)]
    assert [s.values for s in corpus] != [s.values for s in make_corpus(40, seed=1)]
    assert any(not s.changes for s in corpus) and any(s.changes for s in corpus)
    for series in corpus:
        assert 100 <= len(series.values) <= 2000
        indices = [c.index for c in series.changes]
        assert indices == sorted(indices)
        assert all(EDGE <= i <= len(series.values) - EDGE for i in indices)
        assert all(b - a >= MIN_GAP for a, b in itertools.pairwise(indices))
    write_corpus(corpus, tmp_path)
    assert read_corpus(tmp_path) == corpus


def test_matching_pairs_each_true_change_with_at_most_one_detection() -> None:
    assert match([100, 200], [98, 103, 260]) == {0: 0}  # closest wins, the other is spare
    assert match([100], [106]) == {}  # beyond ±5


def _series(*changes: tuple[int, float]) -> LabelledSeries:
    return LabelledSeries(
        id="t", values=[1.0] * 400, cv=0.01, changes=[Change(i, m) for i, m in changes]
    )


def test_scoring_counts_hits_misses_and_false_alarms() -> None:
    tally = score(_series((100, 0.1), (200, 0.1)), [101, 300, 301])
    assert (tally.tp, tally.fn, tally.fp) == (1, 1, 2)
    assert tally.precision == pytest.approx(1 / 3) and tally.recall == pytest.approx(0.5)


def test_small_steps_are_dont_care_in_the_target_score() -> None:
    series = _series((100, 0.02), (200, 0.10))
    found = score(series, [100, 200], min_step=0.05)
    assert (found.tp, found.fn, found.fp) == (1, 0, 0)  # finding the 2% step is no false alarm
    missed = score(series, [200], min_step=0.05)
    assert (missed.tp, missed.fn, missed.fp) == (1, 0, 0)  # nor is missing it a miss


def test_lookback_zscore_flags_a_step_once_per_run_of_flags() -> None:
    quiet = [100.0 + (i % 3) * 0.1 for i in range(100)]
    assert lookback_zscore(quiet) == []
    # Points 100-104 are all far from the 50 before them: one run of flags, one detection.
    assert lookback_zscore([*quiet, *[120.0] * 5, *quiet]) == [100]
