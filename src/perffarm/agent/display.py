"""Showing runs in the terminal: numbers in units people read, and rich tables."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text

from perffarm.model import Result, RunDocument, Summary

_TIME_STEPS = [(1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"), (1.0, "s")]
_BYTE_STEPS = [(1, "B"), (1024, "KiB"), (1024**2, "MiB"), (1024**3, "GiB"), (1024**4, "TiB")]


def format_value(value: float | None, unit: str) -> str:
    """``0.00123, "s"`` -> ``1.23 ms``; bytes in binary steps; other units as they are."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if unit == "s":
        scale, name = _TIME_STEPS[0]
        for step, step_name in _TIME_STEPS:
            if abs(value) >= step:
                scale, name = step, step_name
        return f"{_significant(value / scale)} {name}"
    if unit == "bytes":
        scale, name = _BYTE_STEPS[0]
        for step, step_name in _BYTE_STEPS:
            if abs(value) >= step:
                scale, name = step, step_name
        return f"{_significant(value / scale)} {name}"
    suffix = f" {unit}" if unit else ""
    return f"{_significant(value)}{suffix}"


def _significant(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude < 1e-3:
        return f"{value:.3g}"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_ci(summary: Summary | None, unit: str) -> str:
    """Half the width of the median's interval as ``± x``, or '-' when there is none."""
    if summary is None or summary.median_ci is None or summary.median is None:
        return "-"
    half = (summary.median_ci.high - summary.median_ci.low) / 2
    return f"± {format_value(half, unit)}"


def format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items())


def results_table(results: Iterable[Result], *, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("benchmark", overflow="fold")
    table.add_column("params", overflow="fold")
    table.add_column("metric", overflow="fold")
    table.add_column("median", justify="right", no_wrap=True)
    table.add_column("±CI", justify="right", no_wrap=True)
    table.add_column("CV", justify="right", no_wrap=True)
    table.add_column("n", justify="right")
    for result in results:
        summary = result.summary
        cv = f"{summary.cv:.1%}" if summary and summary.cv is not None else "-"
        if summary and summary.warnings:
            cv += " !"
        unstable = bool(summary and summary.warnings)
        median = format_value(summary.median if summary else None, result.unit)
        table.add_row(
            result.benchmark,
            format_params(result.params),
            result.metric,
            median,
            format_ci(summary, result.unit),
            Text(cv, style="yellow" if unstable else ""),
            str(summary.n if summary else len(result.samples)),
        )
    return table


def result_summary_json(run: RunDocument) -> dict[str, Any]:
    """The short machine-readable answer of ``perffarm run --json``."""
    return {
        "id": str(run.id),
        "project": run.project,
        "tag": run.tag,
        "status": run.status.value,
        "error": run.error,
        "machine": run.machine,
        "fingerprint": run.environment.fingerprint,
        "results": [
            {
                "benchmark": result.benchmark,
                "params": result.params,
                "metric": result.metric,
                "unit": result.unit,
                "direction": result.direction.value,
                "n": result.summary.n if result.summary else len(result.samples),
                "median": result.summary.median if result.summary else None,
                "mean": result.summary.mean if result.summary else None,
                "median_ci": result.summary.median_ci.model_dump()
                if result.summary and result.summary.median_ci
                else None,
                "cv": result.summary.cv if result.summary else None,
                "warnings": result.summary.warnings if result.summary else [],
            }
            for result in run.results
        ],
    }


def status_style(status: str) -> str:
    """The colour of a run's or a measurement's status (a style, never markup)."""
    return {
        "ok": "green",
        "failed": "red",
        "build-failed": "red",
        "interrupted": "yellow",
        "skipped": "dim",
    }.get(status, "")
