"""k6-style thresholds: ``{"receivedPerSecond": ["p(95) > 50"], "duplicate": ["count == 0"]}``.

An expression is ``AGGREGATE OPERATOR NUMBER``. Aggregates over every datapoint of the
test (all peers, all periods): ``count`` and ``sum`` (the metric added up: a per-period
counter such as ``duplicate`` sums to the test's total), ``avg``, ``min``, ``max``, ``med``
and ``p(N)``. Pure functions: the server and ``perffarm loadtest local`` share them.

As in k6, an entry may also be an object, ``{"threshold": "p(95) < 200", "abortOnFail":
true, "delayAbortEval": "10s"}``: the results server then checks it during the run too, and
finishes the test as failed (aborted) at the first check where it fails, once the delay
after the start has passed.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_EXPRESSION = re.compile(
    r"^\s*(?P<agg>count|sum|avg|mean|min|max|med|p\(\s*(?P<p>\d+(?:\.\d+)?)\s*\))\s*"
    r"(?P<op><=|>=|==|!=|<|>)\s*(?P<value>-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$"
)


class ThresholdError(ValueError):
    """A threshold expression that cannot be read; the message shows the grammar."""


@dataclass(frozen=True)
class Threshold:
    metric: str
    expression: str
    aggregate: str  # count, sum, avg, min, max, or p<N> (med is p50)
    operator: str
    value: float
    #: Checked during the run: a failure finishes (aborts) the test.
    abort_on_fail: bool = False
    #: Seconds after the start before a failure may abort the test.
    delay_abort_eval: float = 0.0

    @property
    def percentile(self) -> float | None:
        return float(self.aggregate[1:]) if self.aggregate.startswith("p") else None


def parse(metric: str, expression: str) -> Threshold:
    match = _EXPRESSION.match(expression)
    if not match:
        raise ThresholdError(
            f"threshold {metric}: {expression!r} is not AGGREGATE OPERATOR NUMBER "
            "(aggregates: count, sum, avg, min, max, med, p(N); e.g. 'p(95) > 50')"
        )
    agg = match["agg"]
    if match["p"] is not None:
        percentile = float(match["p"])
        if not 0 <= percentile <= 100:
            raise ThresholdError(f"threshold {metric}: p({match['p']}) is outside 0..100")
        agg = f"p{percentile:g}"
    agg = {"mean": "avg", "med": "p50"}.get(agg, agg)
    return Threshold(metric, expression.strip(), agg, match["op"], float(match["value"]))


_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(metric: str, value: object) -> float:
    """k6's ``delayAbortEval``: ``"10s"``, ``"500ms"``, ``"1m"``, or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ThresholdError(
            f"threshold {metric}: delayAbortEval {value!r} is not a duration such as '10s'"
        )
    return float(match["n"]) * _UNITS[match["unit"]]


def parse_entry(metric: str, entry: object) -> Threshold:
    """A string expression, or k6's ``{"threshold", "abortOnFail"?, "delayAbortEval"?}``."""
    if isinstance(entry, str):
        return parse(metric, entry)
    if not isinstance(entry, dict) or not isinstance(entry.get("threshold"), str):
        raise ThresholdError(
            f'threshold {metric}: give an expression or {{"threshold": EXPRESSION, '
            '"abortOnFail": true, "delayAbortEval": "10s"}'
        )
    unknown = set(entry) - {"threshold", "abortOnFail", "delayAbortEval"}
    if unknown:
        raise ThresholdError(f"threshold {metric}: unknown keys {', '.join(sorted(unknown))}")
    abort = entry.get("abortOnFail", False)
    if not isinstance(abort, bool):
        raise ThresholdError(f"threshold {metric}: abortOnFail must be true or false")
    delay = entry.get("delayAbortEval")
    threshold = parse(metric, entry["threshold"])
    return replace(
        threshold,
        abort_on_fail=abort,
        delay_abort_eval=0.0 if delay is None else parse_duration(metric, delay),
    )


def parse_all(definition: dict[str, Any]) -> list[Threshold]:
    """``{metric: expression | [expression | {"threshold", "abortOnFail"?, ...}]}``."""
    if not isinstance(definition, dict):
        raise ThresholdError("thresholds must be an object: {metric: [expression, ...]}")
    out: list[Threshold] = []
    for metric, entries in definition.items():
        if not isinstance(entries, list):
            entries = [entries]
        out.extend(parse_entry(metric, e) for e in entries)
    return out


def parse_option(text: str) -> tuple[str, str]:
    """``METRIC=EXPRESSION`` from a command line option, checked."""
    metric, sep, expression = text.partition("=")
    if not sep or not metric.strip():
        raise ThresholdError(
            f"--threshold {text!r}: give METRIC=EXPRESSION, e.g. 'receivedPerSecond=p(95) > 50'"
        )
    parse(metric.strip(), expression)
    return metric.strip(), expression.strip()


@dataclass(frozen=True)
class Outcome:
    threshold: Threshold
    observed: float | None
    passed: bool

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "metric": self.threshold.metric,
            "expression": self.threshold.expression,
            "observed": self.observed,
            "passed": self.passed,
        }
        if self.threshold.abort_on_fail:
            out["abortOnFail"] = True
        return out


def evaluate(threshold: Threshold, aggregates: Mapping[str, float | None] | None) -> Outcome:
    """``aggregates`` maps count/sum/avg/min/max/pN to the metric's figures.

    A metric nobody reported fails its thresholds: a test whose peers never sent anything
    must not pass ``duplicate: count == 0``.
    """
    observed = None if aggregates is None else aggregates.get(threshold.aggregate)
    if observed is None:
        return Outcome(threshold, None, False)
    passed = _OPERATORS[threshold.operator](observed, threshold.value)
    return Outcome(threshold, observed, passed)


def settled(outcome: Outcome) -> bool:
    """A failure that no later datapoint can undo, so a running test may stop on it.

    Sums of counters and maxima only grow, minima only shrink: ``count == 0`` that failed
    or ``max < 200`` that failed stays failed. Averages and percentiles can recover.
    """
    if outcome.passed or outcome.observed is None:
        return False
    aggregate, op = outcome.threshold.aggregate, outcome.threshold.operator
    if aggregate in ("count", "sum", "max"):
        return op in ("<", "<=", "==")
    if aggregate == "min":
        return op in (">", ">=", "==")
    return False
