"""Comparing two runs result by result, matched by (benchmark, canonical params, metric)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from perffarm.analysis.samples import SamplePair, compare_batch
from perffarm.analysis.verdict import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MIN_EFFECT,
    Comparison,
    Verdict,
    frozen_from,
)
from perffarm.gcpause import collector_paused
from perffarm.model import Direction, Result, RunDocument, Summary, canonical_params


@dataclass(frozen=True)
class Override:
    """Per-benchmark settings (from the suite YAML): a different threshold, direction, or skip."""

    min_effect: float | None = None
    direction: Direction | None = None
    ignore: bool = False


class Presence(StrEnum):
    BOTH = "both"
    BASELINE_ONLY = "baseline only"
    CONTENDER_ONLY = "contender only"
    IGNORED = "ignored"


@dataclass(frozen=True)
class ResultComparison:
    """One (benchmark, params, metric) of two runs and how it compares."""

    benchmark: str
    params: dict[str, Any]
    metric: str
    unit: str
    presence: Presence
    comparison: Comparison | None

    @property
    def verdict(self) -> Verdict:
        return self.comparison.verdict if self.comparison else Verdict.UNKNOWN

    @property
    def name(self) -> str:
        """``benchmark[k=v,...] metric``: how a person reads the key."""
        params = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return (
            f"{self.benchmark}[{params}] {self.metric}"
            if params
            else (f"{self.benchmark} {self.metric}")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "params": self.params,
            "metric": self.metric,
            "unit": self.unit,
            "presence": self.presence.value,
            "verdict": self.verdict.value,
            "comparison": self.comparison.to_dict() if self.comparison else None,
        }


def _override_for(benchmark: str, overrides: Mapping[str, Override] | None) -> Override | None:
    """The exact name's override, else the first glob pattern (in the given order) matching."""
    if not overrides:
        return None
    if benchmark in overrides:
        return overrides[benchmark]
    for pattern, override in overrides.items():
        if fnmatch.fnmatchcase(benchmark, pattern):
            return override
    return None


def _index(results: Sequence[Result]) -> dict[tuple[str, str, str], list[Result]]:
    index: dict[tuple[str, str, str], list[Result]] = {}
    canonical: dict[Any, str] = {}
    # The same params in the same order, with values of the same types, have the same text:
    # a cheaper key in front of the sorted marker of _canonical (which it only shortcuts).
    quick: dict[Any, str] = {}
    for result in results:
        params = result.params
        values = tuple(params.values())
        shortcut: tuple[Any, ...] | None
        text: str | None
        try:
            shortcut = (tuple(params), values, tuple(map(type, values)))
            text = quick.get(shortcut)
        except TypeError:  # unhashable values
            shortcut = text = None
        if text is None:
            text = _canonical(params, canonical)
            if shortcut is not None:
                quick[shortcut] = text
        key = (result.benchmark, text, result.metric)
        found = index.get(key)
        if found is None:
            index[key] = [result]
        else:
            found.append(result)
    return index


def _canonical(params: Mapping[str, Any], seen: dict[Any, str]) -> str:
    """``canonical_params``, remembered per distinct params (values typed: 1, 1.0, True differ)."""
    try:
        marker = tuple(sorted((k, type(v), v) for k, v in params.items()))
        text = seen.get(marker)
    except TypeError:  # unhashable or unorderable values
        return canonical_params(dict(params))
    if text is None:
        text = seen[marker] = canonical_params(dict(params))
    return text


def _pooled(results: list[Result]) -> tuple[list[float], Summary | None]:
    """A key measured twice in one run: its samples together, the summary only if alone."""
    if len(results) == 1:
        return results[0].samples, results[0].summary
    samples = [value for result in results for value in result.samples]
    summary = results[0].summary if len(results) == 1 else None
    return samples, summary


def compare_runs(
    baseline: RunDocument,
    contender: RunDocument,
    overrides: Mapping[str, Override] | None = None,
    *,
    min_effect: float = DEFAULT_MIN_EFFECT,
    alpha: float = DEFAULT_ALPHA,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> list[ResultComparison]:
    """Compare every result of two runs matched by (benchmark, canonical params, metric).

    Results on one side only are listed with their ``presence`` and no comparison; the order
    is the contender's, then what only the baseline has. All comparisons are computed as one
    batch (``compare_batch``); ``bootstrap`` and ``seed`` are ignored (the interval is exact).
    """
    del bootstrap, seed
    # Thousands of small objects are made at once: a cyclic garbage collection half-way
    # through would only walk them (and the documents) to find no cycles.
    with collector_paused():
        return _compare_runs(baseline, contender, overrides, min_effect=min_effect, alpha=alpha)


def _compare_runs(
    baseline: RunDocument,
    contender: RunDocument,
    overrides: Mapping[str, Override] | None,
    *,
    min_effect: float,
    alpha: float,
) -> list[ResultComparison]:
    base_index = _index(baseline.results)
    cont_index = _index(contender.results)
    keys = list(cont_index) + [key for key in base_index if key not in cont_index]
    comparisons: list[ResultComparison | None] = []
    # (position in comparisons, entry, extra notes) of each key compared, in batch order.
    compared: list[tuple[int, dict[str, Any], list[str]]] = []
    pairs: list[SamplePair] = []
    new = object.__new__
    for key in keys:
        base_results = base_index.get(key)
        cont_results = cont_index.get(key)
        first = (cont_results or base_results or [])[0]
        override = _override_for(first.benchmark, overrides) if overrides else None
        entry: dict[str, Any] = {
            "benchmark": first.benchmark,
            "params": dict(first.params),
            "metric": first.metric,
            "unit": first.unit,
        }
        if override is not None and override.ignore:
            comparisons.append(
                frozen_from(
                    ResultComparison, {**entry, "presence": Presence.IGNORED, "comparison": None}
                )
            )
            continue
        if not base_results or not cont_results:
            presence = Presence.CONTENDER_ONLY if cont_results else Presence.BASELINE_ONLY
            comparisons.append(
                frozen_from(ResultComparison, {**entry, "presence": presence, "comparison": None})
            )
            continue
        direction = (
            override.direction
            if override is not None and override.direction is not None
            else first.direction
        )
        base_first, cont_first = base_results[0], cont_results[0]
        if len(base_results) == 1 and len(cont_results) == 1:  # _pooled, inlined
            base_samples, base_summary = base_first.samples, base_first.summary
            cont_samples, cont_summary = cont_first.samples, cont_first.summary
        else:
            base_samples, base_summary = _pooled(base_results)
            cont_samples, cont_summary = _pooled(cont_results)
        pair = new(SamplePair)
        pair.__dict__.update(
            {
                "baseline": base_samples,
                "contender": cont_samples,
                "direction": direction,
                "min_effect": (
                    override.min_effect
                    if override is not None and override.min_effect is not None
                    else min_effect
                ),
                "baseline_summary": base_summary,
                "contender_summary": cont_summary,
            }
        )
        pairs.append(pair)
        extra = []
        if base_first.direction != cont_first.direction:
            extra.append(
                f"the runs disagree on the direction; compared as {direction.value} is better"
            )
        if base_first.unit != cont_first.unit:
            extra.append(
                f"the units differ ({base_first.unit} and {cont_first.unit}): "
                "the ratio may mean nothing"
            )
        if len(base_results) > 1 or len(cont_results) > 1:
            extra.append("measured more than once in a run: samples pooled")
        compared.append((len(comparisons), entry, extra))
        comparisons.append(None)
    both = Presence.BOTH
    for (position, entry, extra), comparison in zip(
        compared, compare_batch(pairs, alpha=alpha), strict=True
    ):
        if extra:
            comparison = _with_notes(comparison, extra)
        entry["presence"] = both
        entry["comparison"] = comparison
        item = new(ResultComparison)
        item.__dict__.update(entry)
        comparisons[position] = item
    return [item for item in comparisons if item is not None]


def _with_notes(comparison: Comparison, notes: list[str]) -> Comparison:
    return replace(comparison, notes=[*comparison.notes, *notes])


def series_key_text(benchmark: str, params: Mapping[str, Any], metric: str) -> str:
    """A stable one-line key, e.g. for JUnit test names or JSON maps."""
    return f"{benchmark}|{canonical_params(dict(params))}|{metric}"
