"""The CI gate's verdict (perffarm.analysis.gate), without a store or a command line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import numpy as np
import pytest

from perffarm.analysis.compare import Override
from perffarm.analysis.config import AnalysisConfig
from perffarm.analysis.gate import DEFAULT_MAX_REGRESSION, evaluate, regression_limit, run_label
from perffarm.model import Result, RunDocument, Source


def _run(seed: int, slowdown: float, commit: str = "abcdef0123456789") -> RunDocument:
    rng = np.random.default_rng(seed)
    return RunDocument(
        project="demo",
        machine="m1",
        started_at=datetime(2026, 3, 1, tzinfo=UTC),
        source=Source(branch="main", commit=commit),
        results=[
            Result(
                benchmark=name,
                metric="time",
                unit="s",
                samples=(base * factor * (1 + rng.normal(0, 0.01, 10))).tolist(),
            )
            for name, base, factor in (("parse", 0.5, slowdown), ("render", 0.2, 1.0))
        ],
    )


def test_the_limit_is_the_option_else_the_suite_else_five_percent() -> None:
    suite = AnalysisConfig(max_regression=0.1)
    assert regression_limit(0.02, suite) == 0.02
    assert regression_limit(None, suite) == pytest.approx(0.1)
    assert regression_limit(None, AnalysisConfig()) == DEFAULT_MAX_REGRESSION == 0.05
    assert regression_limit(None, None) == 0.05


def test_a_ten_percent_regression_fails_a_five_percent_gate() -> None:
    gate = evaluate(_run(1, 1.0), _run(2, 1.10), limit=0.05)
    assert not gate.passed
    assert [item.benchmark for item in gate.regressions] == ["parse"]
    assert gate.items[0].benchmark == "parse"  # what got worse comes first
    assert "1 slower beyond 5%" in gate.title() and "(limit 5%)" in gate.title()
    report = gate.json_report()
    assert report["passed"] is False and report["regressions"] == 1
    assert json.loads(gate.render("json")) == report
    assert gate.render("markdown").startswith("## ❌ perffarm: 1 slower beyond 5%: `parse")
    suite = ET.fromstring(gate.render("junit").split("\n", 1)[1]).find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


def test_a_looser_limit_or_an_ignore_override_passes() -> None:
    baseline, contender = _run(1, 1.0), _run(2, 1.10)
    assert evaluate(baseline, contender, limit=0.2).passed
    ignored = evaluate(baseline, contender, limit=0.05, overrides={"parse*": Override(ignore=True)})
    assert ignored.passed and "no regression" in ignored.title()


def test_labels_and_unknown_formats() -> None:
    run = _run(1, 1.0)
    assert run_label(run) == f"`{str(run.id)[:8]}` main @abcdef0123"
    with pytest.raises(ValueError, match="unknown report format"):
        evaluate(run, run, limit=0.05).render("table")
