"""The CI gate of `perffarm check`: a contender against a baseline, pass or fail.

Pure: it takes two run documents and returns the verdict and its reports; which runs
(from the local store, or a server's baseline that follows git) is perffarm.agent.baseline's
part, and the options and printing are the command's (perffarm.commands.check).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from perffarm.analysis import report
from perffarm.analysis.compare import Override, Presence, ResultComparison, Verdict, compare_runs
from perffarm.analysis.config import AnalysisConfig
from perffarm.model import RunDocument

# The largest slowdown tolerated when neither --max-regression nor the suite says.
DEFAULT_MAX_REGRESSION = 0.05

REPORT_FORMATS = ("markdown", "json", "junit")


def regression_limit(given: float | None, analysis: AnalysisConfig | None) -> float:
    """The limit: the one given (an option), else the suite's analysis section's, else 5%."""
    if given is not None:
        return given
    if analysis is not None and analysis.max_regression is not None:
        return analysis.max_regression
    return DEFAULT_MAX_REGRESSION


def run_label(run: RunDocument) -> str:
    """How a report names a run: its short id, branch and commit."""
    parts = [f"`{str(run.id)[:8]}`"]
    if run.source.branch:
        parts.append(run.source.branch)
    if run.source.commit:
        parts.append(f"@{run.source.commit[:10]}")
    return " ".join(parts)


@dataclass(frozen=True)
class Gate:
    """The outcome of one check: every comparison, ordered, and the regressions among them."""

    baseline: RunDocument
    contender: RunDocument
    limit: float
    items: list[ResultComparison]

    @cached_property
    def regressions(self) -> list[ResultComparison]:
        """Results on both sides that are significantly slower beyond the limit."""
        return [
            i for i in self.items if i.presence is Presence.BOTH and i.verdict is Verdict.SLOWER
        ]

    @property
    def passed(self) -> bool:
        return not self.regressions

    @cached_property
    def judged(self) -> bool:
        """Whether any result could be judged: on both sides, not ignored, with a verdict.

        A gate that judged nothing (runs without a result in common, a contender whose build
        failed, results without samples) has no verdict: passing it would let a broken
        benchmark through a CI job as "no regression".
        """
        return any(
            i.presence is Presence.BOTH and i.verdict is not Verdict.UNKNOWN for i in self.items
        )

    def why_not_judged(self) -> str:
        """Why the gate has no verdict, for a person (when ``judged`` is false)."""
        both = [i for i in self.items if i.presence is Presence.BOTH]
        if both:
            notes = [
                f"{i.name}: {i.comparison.notes[0]}"
                for i in both
                if i.comparison and i.comparison.notes
            ]
            return f"none of the {len(both)} results both runs have could be judged" + (
                f" ({notes[0]})" if notes else ""
            )
        if not self.contender.results:
            return f"the run checked has no results (status {self.contender.status.value})"
        if not self.baseline.results:
            return f"the baseline has no results (status {self.baseline.status.value})"
        if any(i.presence is Presence.IGNORED for i in self.items):
            return "every result the runs share is ignored by the suite's overrides"
        return "the runs have no benchmark, params and metric in common"

    def title(self) -> str:
        """The terminal table's title: what against what, and the verdict."""
        limit = report.format_percent(self.limit)
        verdict = (
            f"{len(self.regressions)} slower beyond {limit}"
            if self.regressions
            else "no regression"
            if self.judged
            else "no verdict"
        )
        return (
            f"{run_label(self.contender)} against {run_label(self.baseline)}: {verdict} "
            f"(limit {limit})"
        )

    def json_report(self) -> dict[str, Any]:
        return report.json_report(
            self.items,
            baseline=str(self.baseline.id),
            contender=str(self.contender.id),
            max_regression=self.limit,
            regressions=len(self.regressions),
            passed=self.passed and self.judged,
            judged=self.judged,
        )

    def render(self, fmt: str) -> str:
        """The report as text: ``markdown``, ``junit`` or ``json`` (one of REPORT_FORMATS)."""
        if fmt == "markdown":
            return report.markdown_report(
                self.items,
                baseline_label=run_label(self.baseline),
                contender_label=run_label(self.contender),
                max_regression=self.limit,
            )
        if fmt == "junit":
            return report.junit_report(self.items, max_regression=self.limit)
        if fmt == "json":
            return json.dumps(self.json_report(), indent=2) + "\n"
        raise ValueError(f"unknown report format {fmt!r}: one of {', '.join(REPORT_FORMATS)}")


def evaluate(
    baseline: RunDocument,
    contender: RunDocument,
    *,
    limit: float,
    overrides: Mapping[str, Override] | None = None,
) -> Gate:
    """Compare ``contender`` with ``baseline``; the limit is the minimum effect, so "slower"
    already means "slower beyond the limit"."""
    items = report.ordered(compare_runs(baseline, contender, overrides, min_effect=limit))
    return Gate(baseline=baseline, contender=contender, limit=limit, items=items)
