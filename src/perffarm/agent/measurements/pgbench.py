"""The pgbench measurement: a private PostgreSQL cluster, ``pgbench -i``, then every
combination of mode x clients x jobs for a duration, repeated.

Each pgbench run uses ``-r`` (per-statement latencies) and ``-P 1 --progress-timestamp``
(per-second progress, kept as series). Repetitions go in rounds over the combinations
(c1 c2 c3, c1 c2 c3, ...) so that a slow drift of the machine spreads over every
combination instead of biasing the last one. The cluster is always stopped and deleted in
``teardown``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from perffarm.adapters.pgbench import (
    SCRIPT_PREFIX,
    PgbenchReport,
    ms_to_s,
    parse_pgbench_output,
    progress_series,
    report_values,
    run_params,
)
from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import Measurement, MeasurementContext, MeasurementOptions
from perffarm.agent.pgcluster import ClusterError, PrivateCluster
from perffarm.model import ParamValue, canonical_params

BUILTIN_MODES = {
    "read-write": ["-b", "tpcb-like"],
    "read-only": ["-S"],
    "simple-update": ["-N"],
}
# Beyond the requested duration, how long a pgbench run may take (vacuum, connecting,
# finishing the last transactions) before it is considered hung and killed.
RUN_GRACE_SECONDS = 120.0


class PgbenchError(RuntimeError):
    """pgbench failed; the message holds what pgbench said."""


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class PgbenchOptions(MeasurementOptions):
    """The ``pgbench`` measurement's keys in the suite."""

    scale: int = Field(default=1, ge=1, description="pgbench -i -s SCALE")
    clients: list[int] = Field(default=[1], min_length=1, description="client counts (-c)")
    jobs: list[int] = Field(default=[1], min_length=1, description="worker threads (-j)")
    modes: list[str] = Field(
        default=["read-write"],
        min_length=1,
        description="read-write, read-only (-S), simple-update (-N) or script:PATH",
    )
    duration: int = Field(default=10, ge=1, description="seconds per run (-T)")
    warmup_duration: int | None = Field(
        default=None, ge=1, description="seconds per warm-up run; default: duration"
    )
    settings: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="postgresql.conf settings of the private cluster"
    )
    bin_dir: str | None = Field(
        default=None,
        description="PostgreSQL programs to use, e.g. '{{ build.prefix }}/bin'; "
        "default: pg_config --bindir or the newest /usr/lib/postgresql/*/bin",
    )
    init_options: list[str] = Field(
        default_factory=list, description="extra pgbench -i options, e.g. ['--unlogged-tables']"
    )
    protocol: Literal["simple", "extended", "prepared"] = "simple"
    pgbench_options: list[str] = Field(
        default_factory=list, description="extra options for every measured pgbench run"
    )

    _to_list = field_validator("clients", "jobs", mode="before")(_as_list)

    @field_validator("clients", "jobs")
    @classmethod
    def _positive(cls, values: list[int]) -> list[int]:
        for value in values:
            if value < 1:
                raise ValueError(f"must be at least 1, got {value}")
        return values

    @field_validator("modes", mode="before")
    @classmethod
    def _modes_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("modes")
    @classmethod
    def _known_modes(cls, modes: list[str]) -> list[str]:
        for mode in modes:
            if mode in BUILTIN_MODES:
                continue
            if mode.startswith(SCRIPT_PREFIX) and mode[len(SCRIPT_PREFIX) :].strip():
                continue
            raise ValueError(
                f"unknown mode {mode!r}: use read-write, read-only, simple-update or "
                "script:PATH (a pgbench script, relative to the suite file)"
            )
        if len(set(modes)) != len(modes):
            raise ValueError("modes must not repeat")
        return modes

    @model_validator(mode="after")
    def _some_combination(self) -> PgbenchOptions:
        if not any(j <= c for c in self.clients for j in self.jobs):
            raise ValueError(
                f"every jobs value ({self.jobs}) exceeds every clients value ({self.clients}); "
                "pgbench cannot run more threads than clients"
            )
        return self


@dataclass(frozen=True)
class Combination:
    mode: str
    clients: int
    jobs: int

    def label(self) -> str:
        return f"mode={self.mode},clients={self.clients},jobs={self.jobs}"

    def slug(self) -> str:
        mode = re.sub(r"[^A-Za-z0-9._-]+", "_", self.mode)
        return f"{mode}-c{self.clients}-j{self.jobs}"


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


@dataclass
class _State:
    runs: list[PgbenchRun] = field(default_factory=list)
    recorded: bool = False
    interrupted: bool = False


def run_client(
    argv: list[str],
    *,
    env: dict[str, str],
    timeout: float | None,
    stop_event: threading.Event | None = None,
    cwd: Path | None = None,
) -> tuple[int, str, bool]:
    """Run a client program, stdout and stderr interleaved into one text.

    Returns (exit status, output, stopped). The program gets its own session so that a
    Ctrl-C reaches perffarm, which then kills it, rather than the program alone; it is
    killed too when ``stop_event`` is set or the timeout passes.
    """
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        stopped = False
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if stop_event is not None and stop_event.is_set():
                    stopped = True
                    break
                if deadline is not None and time.monotonic() > deadline:
                    out.write(f"\nperffarm: killed after {timeout:.0f} s\n".encode())
                    break
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                proc.wait()
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    return proc.returncode, text, stopped


class PgbenchMeasurement(Measurement):
    """pgbench against a private cluster started from the built or the system's binaries."""

    type_name: ClassVar[str] = "pgbench"
    Options: ClassVar[type[MeasurementOptions]] = PgbenchOptions
    database: ClassVar[str] = "pgbench"

    def __init__(self, name: str, options: MeasurementOptions, context: MeasurementContext):
        super().__init__(name, options, context)
        self.options: PgbenchOptions
        self.cluster: PrivateCluster | None = None
        self._state = _State()
        self._scripts: dict[str, Path] = {}

    # -- helpers --------------------------------------------------------------------------

    @property
    def runs(self) -> list[PgbenchRun]:
        return list(self._state.runs)

    def combinations(self) -> list[Combination]:
        """Every mode x clients x jobs to run; jobs above clients are left out (pgbench
        would silently lower them, duplicating another combination)."""
        return [
            Combination(mode, clients, jobs)
            for mode, clients, jobs in itertools.product(
                self.options.modes, self.options.clients, self.options.jobs
            )
            if jobs <= clients
        ]

    def _program(self, name: str) -> str:
        assert self.cluster is not None
        return str(self.cluster.bin_dir / name)

    def _mode_args(self, mode: str) -> list[str]:
        if mode in BUILTIN_MODES:
            return BUILTIN_MODES[mode]
        # pgbench reads the scale from pgbench_branches for its built-in scripts only: for a
        # custom one, :scale and the "scaling factor" it prints are 1 unless -s gives them.
        return ["-s", str(self.options.scale), "-f", str(self._scripts[mode])]

    def _resolve_scripts(self) -> None:
        for mode in self.options.modes:
            if not mode.startswith(SCRIPT_PREFIX):
                continue
            path = Path(self.context.expand(mode[len(SCRIPT_PREFIX) :].strip())).expanduser()
            if not path.is_absolute():
                path = self.context.suite_dir / path
            if not path.is_file():
                raise PgbenchError(f"mode {mode!r}: no pgbench script at {path}")
            self._scripts[mode] = path

    def pgbench_argv(self, combination: Combination, duration: int) -> list[str]:
        """The full pgbench command of one measured run."""
        assert self.cluster is not None
        conn = self.cluster.connection(self.database)
        return [
            self._program("pgbench"),
            *conn.pg_args(),
            "-T",
            str(duration),
            "-c",
            str(combination.clients),
            "-j",
            str(combination.jobs),
            "-M",
            self.options.protocol,
            "-r",
            "-P",
            "1",
            "--progress-timestamp",
            *self._mode_args(combination.mode),
            *self.options.pgbench_options,
            conn.dbname,
        ]

    # -- the lifecycle --------------------------------------------------------------------

    def setup(self, experiment: Experiment) -> None:
        self._resolve_scripts()
        bin_dir = self.context.expand(self.options.bin_dir) if self.options.bin_dir else None
        self.cluster = PrivateCluster(bin_dir, self.options.settings)
        self.cluster.start()
        self.cluster.create_database(self.database)
        experiment.add_environment(
            "postgresql",
            {
                "version": self.cluster.version(),
                "server_version_num": self.cluster.server_version_num(),
                "bin_dir": str(self.cluster.bin_dir),
                "settings": self.cluster.non_default_settings(),
            },
        )
        conn = self.cluster.connection(self.database)
        argv = [
            self._program("pgbench"),
            *conn.pg_args(),
            "-i",
            "-s",
            str(self.options.scale),
            *self.options.init_options,
            conn.dbname,
        ]
        status, output, stopped = run_client(
            argv, env=self.cluster.client_env(), timeout=None, stop_event=self.context.stop_event
        )
        experiment.add_attachment("pgbench-init.log", output)
        if stopped:
            self._state.interrupted = True
            return
        if status != 0:
            raise PgbenchError(
                f"pgbench -i -s {self.options.scale} failed with exit status {status}: "
                + _tail(output)
            )

    def start(self, experiment: Experiment) -> None:
        if self.cluster is None or self._state.interrupted:
            return
        combinations = self.combinations()
        warmups, repeat = self.warmup, self.repeat
        experiment.progress.set_total(len(combinations) * (warmups + repeat))
        plan = [(c, w + 1, True) for w in range(warmups) for c in combinations] + [
            (c, r + 1, False) for r in range(repeat) for c in combinations
        ]
        try:
            for combination, repetition, warmup in plan:
                if self.context.stop_event.is_set():
                    self._state.interrupted = True
                    break
                run = self._run_once(combination, repetition, warmup, experiment)
                if run is None:
                    self._state.interrupted = True
                    break
                self._state.runs.append(run)
                experiment.progress.advance()
                if run.exit_status != 0 or not run.report.has_summary:
                    raise PgbenchError(
                        f"pgbench {combination.label()} failed with exit status "
                        f"{run.exit_status}: {_explain(run)}"
                    )
        except BaseException:
            # What finished before the failure still counts; collect() may never run.
            with contextlib.suppress(Exception):
                self._record(experiment)
            raise

    def _run_once(
        self, combination: Combination, repetition: int, warmup: bool, experiment: Experiment
    ) -> PgbenchRun | None:
        assert self.cluster is not None
        duration = (
            self.options.warmup_duration or self.options.duration
            if warmup
            else self.options.duration
        )
        started = time.time()
        status, output, stopped = run_client(
            self.pgbench_argv(combination, duration),
            env=self.cluster.client_env(),
            timeout=duration + RUN_GRACE_SECONDS,
            stop_event=self.context.stop_event,
        )
        kind = "warmup" if warmup else "run"
        experiment.add_attachment(f"pgbench/{combination.slug()}-{kind}{repetition}.log", output)
        if stopped:
            return None
        return PgbenchRun(
            combination,
            repetition,
            warmup,
            started,
            status,
            output,
            parse_pgbench_output(output),
        )

    def collect(self, experiment: Experiment) -> None:
        self._record(experiment)

    def teardown(self, experiment: Experiment) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is None:
            return
        try:
            cluster.stop()
        finally:
            if cluster.final_log:
                # The server log explains a failed run (errors, checkpoints, crashes); the
                # tail is enough and keeps the run document small.
                experiment.add_attachment("postgresql.log", cluster.final_log[-1_000_000:])

    # -- turning runs into results --------------------------------------------------------

    def _record(self, experiment: Experiment) -> None:
        if self._state.recorded:
            return
        self._state.recorded = True
        # A run pgbench reported as failed (aborted clients) has partial figures: it is in
        # the table and its log is attached, but it is no sample.
        runs = [r for r in self._state.runs if r.report.has_summary and r.exit_status == 0]
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
            name=self.name,
        )
        for run in self._state.runs:
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
        for combination in self.combinations():
            measured = [r for r in runs if r.combination == combination and not r.warmup]
            warm = [r for r in runs if r.combination == combination and r.warmup]
            if not measured:
                continue
            params = run_params(
                combination.mode,
                combination.clients,
                combination.jobs,
                self.options.scale,
                self.options.protocol,
            )
            _add_results(experiment, measured, warm, params)
            for run in measured:
                self._add_progress(experiment, run)

    def _add_progress(self, experiment: Experiment, run: PgbenchRun) -> None:
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


def _tail(output: str, lines: int = 15) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def _explain(run: PgbenchRun) -> str:
    if run.report.errors:
        return "; ".join(run.report.errors[:3])
    return _tail(run.output)


__all__ = [
    "ClusterError",
    "Combination",
    "PgbenchError",
    "PgbenchMeasurement",
    "PgbenchOptions",
    "PgbenchRun",
    "run_client",
]
