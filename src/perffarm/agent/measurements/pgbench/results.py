"""Turning pgbench runs into the run document: a table of every run, the results (from the
one table of ``perffarm.adapters.pgbench``) and the progress series."""

from __future__ import annotations

from dataclasses import dataclass

from perffarm.adapters.pgbench import (
    PgbenchReport,
    ms_to_s,
    progress_series,
    report_values,
    run_params,
)
from perffarm.agent.experiment import Experiment
from perffarm.agent.measurements.pgbench.options import Combination, PgbenchOptions
from perffarm.model import ParamValue, canonical_params


@dataclass
class PgbenchRun:
    """One pgbench invocation and what it printed."""

    combination: Combination
    repetition: int  # 1-based, counted separately for warm-ups
    warmup: bool
    started: float  # epoch seconds
    exit_status: int
    output: str
    report: PgbenchReport


def record_runs(
    experiment: Experiment,
    name: str,
    all_runs: list[PgbenchRun],
    combinations: list[Combination],
    options: PgbenchOptions,
) -> None:
    """A table of every run (warm-ups and failed runs included), then per combination one
    result per quantity pgbench printed (a sample per measured run) and each measured run's
    progress as series."""
    # A run pgbench reported as failed (aborted clients) has partial figures: it is in
    # the table and its log is attached, but it is no sample.
    runs = [r for r in all_runs if r.report.has_summary and r.exit_status == 0]
    table = experiment.create_table(
        [
            "mode",
            "clients",
            "jobs",
            "repetition",
            "warmup",
            "tps",
            "latency_average_s",
            "latency_stddev_s",
            "failed_transactions",
            "transactions",
            "initial_connection_time_s",
            "exit_status",
        ],
        name=name,
    )
    for run in all_runs:
        report = run.report
        table.add(
            run.combination.mode,
            run.combination.clients,
            run.combination.jobs,
            run.repetition,
            run.warmup,
            report.tps,
            ms_to_s(report.latency_average_ms),
            ms_to_s(report.latency_stddev_ms),
            report.failed_transactions,
            report.transactions,
            ms_to_s(report.initial_connection_time_ms),
            run.exit_status,
        )
    for combination in combinations:
        measured = [r for r in runs if r.combination == combination and not r.warmup]
        warm = [r for r in runs if r.combination == combination and r.warmup]
        if not measured:
            continue
        params = run_params(
            combination.mode,
            combination.clients,
            combination.jobs,
            options.scale,
            options.protocol,
        )
        _add_results(experiment, measured, warm, params)
        for run in measured:
            _add_progress(experiment, run)


def _add_progress(experiment: Experiment, run: PgbenchRun) -> None:
    offset = 0.0 if run.report.progress_is_epoch else run.started
    name = f"{{{run.combination.label()},repetition={run.repetition}}}"
    for stem, unit, points in progress_series(run.report):
        experiment.add_series(
            f"pgbench.{stem}{name}", unit, [(offset + t, value) for t, value in points]
        )


def _add_results(
    experiment: Experiment,
    measured: list[PgbenchRun],
    warm: list[PgbenchRun],
    params: dict[str, ParamValue],
) -> None:
    """One result per quantity of the table (``report_values``) with one sample per
    measured run; a quantity some run lacks (an older pgbench) is left out."""

    def values(run: PgbenchRun) -> dict[tuple[str, str], float]:
        return {
            (metric.name, canonical_params(extra)): value
            for metric, extra, value in report_values(run.report)
        }

    measured_values = [values(run) for run in measured]
    warm_values = [values(run) for run in warm]
    for metric, extra, _ in report_values(measured[0].report):
        key = (metric.name, canonical_params(extra))
        if any(key not in found for found in measured_values):
            continue
        experiment.add_result(
            metric.name,
            [found[key] for found in measured_values],
            unit=metric.unit,
            direction=metric.direction,
            params={**params, **extra},
            warmup_samples=[found[key] for found in warm_values if key in found],
            original_unit=metric.original_unit,
        )
