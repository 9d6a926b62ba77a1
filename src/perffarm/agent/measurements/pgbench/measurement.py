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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from perffarm.adapters.pgbench import SCRIPT_PREFIX, parse_pgbench_output
from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import Measurement, MeasurementContext, MeasurementOptions
from perffarm.agent.measurements.pgbench.client import run_client
from perffarm.agent.measurements.pgbench.options import (
    BUILTIN_MODES,
    RUN_GRACE_SECONDS,
    Combination,
    PgbenchError,
    PgbenchOptions,
)
from perffarm.agent.measurements.pgbench.results import PgbenchRun, record_runs
from perffarm.agent.pgcluster import PrivateCluster


@dataclass
class _State:
    runs: list[PgbenchRun] = field(default_factory=list)
    recorded: bool = False
    interrupted: bool = False


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
        record_runs(experiment, self.name, self._state.runs, self.combinations(), self.options)


def _tail(output: str, lines: int = 15) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def _explain(run: PgbenchRun) -> str:
    if run.report.errors:
        return "; ".join(run.report.errors[:3])
    return _tail(run.output)
