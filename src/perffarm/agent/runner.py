"""Running a suite: every measurement's lifecycle, interrupts, failures, and the stored run.

Guarantees, whatever happens inside a measurement:
- ``teardown`` runs after ``setup`` was entered, on success, failure or Ctrl-C;
- a measurement that raises marks the run ``failed`` (with its error) and the next one runs;
- Ctrl-C (or SIGTERM) stops the current measurement, collects what it measured so far,
  tears down, skips the rest, and saves the run marked ``interrupted``; further Ctrl-C
  presses are held back until the run is saved, so the store never gets half a run;
- the run is written to the store in one transaction at the end (``kill -9`` loses the run
  in progress, never the store).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import platformdirs

from perffarm.agent import children
from perffarm.agent.build import BuildConfig, BuildError, BuildWorkspace, build_variables, run_build
from perffarm.agent.config import PlannedMeasurement, Suite
from perffarm.agent.experiment import Experiment, Progress
from perffarm.agent.measurement import Measurement, MeasurementContext
from perffarm.agent.record import (
    add_statistics,
    agent_info,
    describe_machine,
    describe_source,
    merge_environment,
    redact,
    redact_text,
)
from perffarm.agent.store import LocalStore
from perffarm.console import UsageError
from perffarm.model import (
    Attachment,
    Build,
    MeasurementRecord,
    MeasurementStatus,
    RunDocument,
    RunStatus,
    Source,
)


class RunReporter(Protocol):
    """What the terminal (or a test) hears while a suite runs."""

    def measurement_started(self, index: int, count: int, name: str, type_name: str) -> None: ...

    def progress(self, total: int | None, done: int) -> None: ...

    def measurement_finished(self, record: MeasurementRecord) -> None: ...


class _SilentReporter:
    def measurement_started(self, index: int, count: int, name: str, type_name: str) -> None:
        pass

    def progress(self, total: int | None, done: int) -> None:
        pass

    def measurement_finished(self, record: MeasurementRecord) -> None:
        pass


@dataclass
class BuildTarget:
    """One branch head to build before measuring."""

    config: BuildConfig
    workspace: BuildWorkspace
    branch: str
    commit: str


@dataclass
class RunSettings:
    tag: str | None = None
    repeat: int | None = None
    warmup: int | None = None
    work_dir: Path | None = None
    source: Source | None = None
    build: BuildTarget | None = None


def default_build_root() -> Path:
    return Path(platformdirs.user_data_dir("perffarm")) / "builds"


def build_root(suite: Suite) -> Path | None:
    """The work directory of a suite's builds (mirrors and build directories); None for a
    suite without a ``build:`` section."""
    config = suite.config.build
    if config is None:
        return None
    root = Path(config.work_dir).expanduser() if config.work_dir else default_build_root()
    return root if root.is_absolute() else suite.directory / root


def plan_builds(suite: Suite, branches: list[str] | None = None) -> list[BuildTarget]:
    """The branch heads a suite's ``build:`` section asks for (all, or those named).

    Fetches the mirror first, so the heads are the repository's current ones.
    """
    config = suite.config.build
    if config is None:
        if branches:
            raise UsageError("--branch needs a `build:` section in the suite")
        return []
    if not _is_url(config.repository) and not Path(config.repository).is_absolute():
        # A local repository path is relative to the suite, like every other path in it.
        config = config.model_copy(
            update={"repository": str((suite.directory / config.repository).resolve())}
        )
    root = build_root(suite)
    assert root is not None
    workspace = BuildWorkspace(root)
    try:
        if branches:
            workspace.update(config.repository)
            heads = workspace.branch_heads(config.repository)
            missing = [branch for branch in branches if branch not in heads]
            if missing:
                known = ", ".join(sorted(heads)[:10])
                raise UsageError(
                    f"{config.repository} has no branch {missing[0]!r} (branches: {known})"
                )
            selected = {branch: heads[branch] for branch in branches}
        else:
            selected = workspace.resolve_branches(config)
    except BuildError as exc:
        raise UsageError(f"{suite.path}: build: {exc}") from None
    return [BuildTarget(config, workspace, branch, commit) for branch, commit in selected.items()]


def _is_url(repository: str) -> bool:
    return "://" in repository or (":" in repository and not repository.startswith("/"))


class _InterruptGuard:
    """Turns SIGINT/SIGTERM into KeyboardInterrupt, and can hold them back for a while."""

    def __init__(self) -> None:
        self.requested = False
        self._holding = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if not self._holding:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        previous, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = previous


def run_suite(
    suite: Suite,
    store: LocalStore,
    *,
    settings: RunSettings | None = None,
    reporter: RunReporter | None = None,
) -> RunDocument:
    """Measure every measurement of ``suite`` and store the run; returns the stored run."""
    settings = settings or RunSettings()
    reporter = reporter or _SilentReporter()
    guard = _InterruptGuard()
    guard.install()
    started_at = datetime.now(UTC)
    t0 = time.time()
    work_dir = Path(
        tempfile.mkdtemp(prefix=children.RUN_FOLDER_PREFIX, dir=settings.work_dir or None)
    )
    # On the machine lock's record until removed: the next run removes it if this one is
    # killed (perffarm.agent.children).
    children.track_folder(work_dir)
    stop_event = threading.Event()
    context = MeasurementContext(
        suite_dir=suite.directory.resolve(),
        work_dir=work_dir,
        default_repeat=suite.config.repeat,
        default_warmup=suite.config.warmup,
        repeat_override=settings.repeat,
        warmup_override=settings.warmup,
        variables=dict(suite.config.vars),
        render=suite.renderer(),
        stop_event=stop_event,
    )
    records: list[MeasurementRecord] = []
    experiments: list[Experiment] = []
    sampler = None
    environment = None
    source = None
    series: list[Any] = []
    build: Build | None = None
    build_attachments: list[Attachment] = []
    status = RunStatus.OK
    error: str | None = None
    try:
        environment = describe_machine(context.suite_dir, suite.config.fingerprint)
        if settings.build is not None:
            # Known before the build starts, so a run interrupted mid-build still names it.
            target = settings.build
            source = Source(
                repository=target.config.repository, branch=target.branch, commit=target.commit
            )
        else:
            source = settings.source or describe_source(context.suite_dir)
        if suite.config.sampler.enabled:
            from perffarm.agent.sampler import ResourceSampler

            sampler = ResourceSampler(interval=suite.config.sampler.interval, t0=t0)
            try:
                sampler.start()
            except Exception as exc:
                # The sampler describes the run; it must never prevent it.
                environment.errors["sampler"] = _describe(exc)
                sampler = None
        if settings.build is not None:
            outcome = _build(settings.build, suite, context, reporter)
            build, build_attachments, source = outcome.build, outcome.attachments, outcome.source
            if not outcome.succeeded:
                status = RunStatus.BUILD_FAILED
                error = outcome.error
        count = len(suite.measurements)
        for index, planned in enumerate(suite.measurements):
            if status == RunStatus.BUILD_FAILED:
                records.append(_skipped(planned, "the build failed"))
                continue
            if guard.requested:
                records.append(_skipped(planned, "the run was interrupted before it started"))
                continue
            reporter.measurement_started(index, count, planned.name, planned.type_name)
            experiment = Experiment(
                planned.name,
                run_started=t0,
                progress=Progress(reporter.progress),
            )
            record = _run_measurement(planned, context, experiment, guard)
            records.append(record)
            experiments.append(experiment)
            reporter.measurement_finished(record)
    except KeyboardInterrupt:
        guard.requested = True
    except BaseException:
        # Anything else ends run_suite here: the caller's signal handlers must come back.
        guard.restore()
        raise
    finally:
        with guard.holding():
            series = sampler.stop() if sampler is not None else []
            shutil.rmtree(work_dir, ignore_errors=True)
            children.untrack_folder(work_dir)
    try:
        with guard.holding():
            if guard.requested:
                status = RunStatus.INTERRUPTED
                error = "interrupted by the user"
            failed = [r for r in records if r.status == MeasurementStatus.FAILED]
            if status == RunStatus.BUILD_FAILED:
                failed = []
            if failed and status == RunStatus.OK:
                status = RunStatus.FAILED
                error = "; ".join(f"{r.name}: {r.error}" for r in failed)
            document = _assemble(
                suite,
                settings,
                started_at,
                status,
                error,
                environment,
                source,
                records,
                experiments,
                series,
                build,
                build_attachments,
            )
            document = redact(document, suite.secret_values())
            store.save(document)
            return document
    finally:
        guard.restore()


def _build(target: BuildTarget, suite: Suite, context: MeasurementContext, reporter: RunReporter):
    """Build the branch; the measurements then see ``{{ build.* }}`` in their options."""
    variables = build_variables(target.config, target.workspace, target.branch, target.commit)
    context.render = suite.renderer(variables)
    total = len(target.config.steps) + 1
    reporter.measurement_started(-1, 0, f"build {target.branch}@{target.commit[:10]}", "build")
    done = 0

    def on_step(step: Any, finished: bool) -> None:
        nonlocal done
        if finished:
            done += 1
        reporter.progress(total, done)

    try:
        outcome = run_build(
            target.config,
            target.workspace,
            target.branch,
            commit=target.commit,
            render=context.render,
            on_step=on_step,
            secrets=suite.secret_values(),
        )
    except BuildError as exc:
        raise UsageError(f"build of {target.branch}: {exc}") from None
    reporter.measurement_finished(
        MeasurementRecord(
            name="build",
            type="build",
            status=MeasurementStatus.OK if outcome.succeeded else MeasurementStatus.FAILED,
            error=outcome.error,
        )
    )
    return outcome


def _run_measurement(
    planned: PlannedMeasurement,
    context: MeasurementContext,
    experiment: Experiment,
    guard: _InterruptGuard,
) -> MeasurementRecord:
    record = MeasurementRecord(
        name=planned.name,
        type=planned.type_name,
        status=MeasurementStatus.OK,
        started_at=datetime.now(UTC),
        options=planned.raw_options,
    )
    instance: Measurement | None = None
    phase = "create"
    try:
        instance = planned.cls(planned.name, planned.options, context)
        for phase in ("setup", "start", "stop", "collect"):
            getattr(instance, phase)(experiment)
    except KeyboardInterrupt:
        guard.requested = True
        context.stop_event.set()
        record.status = MeasurementStatus.INTERRUPTED
        record.error = f"interrupted during {phase}"
        if instance is not None and phase in ("start", "stop"):
            # Keep what was measured before the interrupt.
            with guard.holding():
                for late_phase in ("stop", "collect") if phase == "start" else ("collect",):
                    try:
                        getattr(instance, late_phase)(experiment)
                    except Exception as exc:
                        record.error += (
                            f"; {late_phase} after the interrupt failed: {_describe(exc)}"
                        )
                        break
    except Exception as exc:
        record.status = MeasurementStatus.FAILED
        record.error = f"{phase} failed: {_describe(exc)}"
    finally:
        if instance is not None:
            with guard.holding():
                try:
                    instance.teardown(experiment)
                except Exception as exc:
                    message = f"teardown failed: {_describe(exc)}"
                    record.error = f"{record.error}; {message}" if record.error else message
                    if record.status == MeasurementStatus.OK:
                        record.status = MeasurementStatus.FAILED
        record.params = dict(experiment.params)
        record.finished_at = datetime.now(UTC)
    return record


def _skipped(planned: PlannedMeasurement, reason: str) -> MeasurementRecord:
    return MeasurementRecord(
        name=planned.name,
        type=planned.type_name,
        status=MeasurementStatus.SKIPPED,
        error=reason,
        options=planned.raw_options,
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _assemble(
    suite: Suite,
    settings: RunSettings,
    started_at: datetime,
    status: RunStatus,
    error: str | None,
    environment: Any,
    source: Source | None,
    records: list[MeasurementRecord],
    experiments: list[Experiment],
    series: list[Any],
    build: Build | None,
    build_attachments: list[Attachment],
) -> RunDocument:
    from perffarm.model import Environment

    environment = environment or Environment()
    results = [result for experiment in experiments for result in experiment.results]
    add_statistics(results)
    for experiment in experiments:
        merge_environment(environment, experiment.environment)
    secrets = suite.secret_values()
    return RunDocument(
        project=suite.config.project,
        tag=settings.tag if settings.tag is not None else suite.config.tag,
        suite=suite.path.name,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        status=status,
        error=redact_text(error, secrets) if error else None,
        machine=suite.machine,
        source=source or Source(),
        environment=environment,
        measurements=records,
        results=results,
        tables=[table for experiment in experiments for table in experiment.tables],
        build=build,
        attachments=unique_names(
            [
                *build_attachments,
                *(item for experiment in experiments for item in experiment.attachments),
            ]
        ),
        series=[*series, *(item for experiment in experiments for item in experiment.series)],
        params={},
        agent=agent_info(),
    )


def unique_names(attachments: list[Attachment]) -> list[Attachment]:
    """The run's attachments with names unique in the run, as the document requires: two
    measurements may each attach a ``postgresql.log``; the later ones are named after their
    measurement (and numbered, when that is not enough)."""
    taken: set[str] = set()
    named = []
    for attachment in attachments:
        name = attachment.name
        if name in taken:
            base = f"{attachment.measurement}/{name}" if attachment.measurement else name
            name, n = base, 2
            while name in taken:
                name, n = f"{base}.{n}", n + 1
            attachment = attachment.model_copy(update={"name": name})
        taken.add(name)
        named.append(attachment)
    return named
