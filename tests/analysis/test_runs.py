"""Comparing two runs result by result."""

from __future__ import annotations

import numpy as np

from perffarm.analysis.runs import Override, Presence, compare_runs
from perffarm.analysis.verdict import Verdict
from perffarm.model import Direction, Result, RunDocument


def _normal(seed: int, mean: float, cv: float, n: int) -> list[float]:
    return np.random.default_rng(seed).normal(mean, mean * cv, n).tolist()


def _run(results: list[Result]) -> RunDocument:
    return RunDocument(project="demo", machine="m1", results=results)


def _result(benchmark: str, samples: list[float], **kwargs: object) -> Result:
    return Result(benchmark=benchmark, metric="time", unit="s", samples=samples, **kwargs)


def test_compare_runs_matches_by_benchmark_params_and_metric() -> None:
    baseline = _run(
        [
            _result("sort", _normal(1, 1.0, 0.01, 10), params={"n": 10, "algo": "quick"}),
            _result("sort", _normal(2, 2.0, 0.01, 10), params={"n": 20, "algo": "quick"}),
            _result("gone", _normal(3, 1.0, 0.01, 10)),
        ]
    )
    contender = _run(
        [
            # Same params in another order: the same series.
            _result("sort", _normal(4, 1.2, 0.01, 10), params={"algo": "quick", "n": 10}),
            _result("sort", _normal(5, 2.0, 0.01, 10), params={"n": 20, "algo": "quick"}),
            _result("new", _normal(6, 1.0, 0.01, 10)),
        ]
    )
    items = {(i.benchmark, i.params.get("n")): i for i in compare_runs(baseline, contender)}
    assert items["sort", 10].verdict is Verdict.SLOWER
    assert items["sort", 20].verdict is Verdict.UNCHANGED
    assert items["gone", None].presence is Presence.BASELINE_ONLY
    assert items["new", None].presence is Presence.CONTENDER_ONLY
    assert items["new", None].comparison is None


def test_compare_runs_applies_overrides() -> None:
    baseline = _run(
        [_result("a", _normal(1, 1.0, 0.01, 10)), _result("b", _normal(2, 1.0, 0.01, 10))]
    )
    contender = _run(
        [_result("a", _normal(3, 1.1, 0.01, 10)), _result("b", _normal(4, 1.1, 0.01, 10))]
    )
    items = compare_runs(
        baseline,
        contender,
        overrides={"a": Override(ignore=True), "b*": Override(min_effect=0.2)},
    )
    by_name = {i.benchmark: i for i in items}
    assert by_name["a"].presence is Presence.IGNORED
    assert by_name["b"].verdict is Verdict.UNCHANGED  # 10% is under the 20% override
    flipped = compare_runs(
        baseline, contender, overrides={"b": Override(direction=Direction.HIGHER)}
    )
    assert {i.benchmark: i.verdict for i in flipped}["b"] is Verdict.FASTER
