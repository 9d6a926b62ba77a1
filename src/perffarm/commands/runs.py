"""`perffarm run`, `runs`, `show` and `system`: measure on this machine, look at stored runs.

Module level: typer and the shared options only; the agent, the model and rich are
imported inside the commands (see perffarm/commands/__init__.py).
"""

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from perffarm.commands._shared import JSON_OPTION, STORE_OPTION, open_store

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.text import Text

    from perffarm.agent.store import LocalStore
    from perffarm.model import MeasurementRecord, RunDocument


class _TerminalReporter:
    """A progress bar per measurement on stderr, so --json output on stdout stays clean."""

    def __init__(self, progress: "Progress | None") -> None:
        self._progress = progress
        self._task: Any = None

    def measurement_started(self, index: int, count: int, name: str, type_name: str) -> None:
        from perffarm.console import visible

        if self._progress is not None:
            label = f"[{index + 1}/{count}] {name} ({type_name})" if count else name
            # The progress column shows descriptions without markup (run_command).
            self._task = self._progress.add_task(visible(label), total=None)

    def progress(self, total: int | None, done: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total, completed=done)

    def measurement_finished(self, record: "MeasurementRecord") -> None:
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[self._task]
        if task.total is None:
            self._progress.update(self._task, total=1, completed=1)
        # The column shows text as it is: the status is told by its word, not a colour.
        self._progress.update(self._task, description=f"{task.description} {record.status.value}")


def run_command(
    suite_file: Path = typer.Argument(..., help="The suite YAML file.", show_default=False),
    tag: str | None = typer.Option(
        None, "--tag", "-t", help="Label this run (overrides the suite's tag)."
    ),
    repeat: int | None = typer.Option(
        None, "--repeat", "-r", min=1, help="Repetitions of each measurement (overrides the suite)."
    ),
    warmup: int | None = typer.Option(None, "--warmup", min=0, help="Warm-up repetitions."),
    branch: list[str] = typer.Option(
        [],
        "--branch",
        "-b",
        help="Build and measure only this branch of the suite's `build:` section (repeatable).",
    ),
    store: Path | None = STORE_OPTION,
    as_json: bool = JSON_OPTION,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Run a benchmark suite on this machine and keep the run in the local store.

    With a `build:` section, each branch head is built first and measured as its own run
    (a failing build is stored as a `build-failed` run with its logs). One benchmark at a
    time per store: while another `perffarm run` or `perffarm agent` measures, this refuses
    to start (their timings would disturb each other).

    Example: perffarm run examples/suite.yaml --tag "after index change" --repeat 10
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from perffarm.agent.config import load_suite
    from perffarm.agent.display import result_summary_json
    from perffarm.agent.lock import holding_machine_lock
    from perffarm.agent.runner import RunSettings, plan_builds, run_suite
    from perffarm.console import err_console, print_json

    suite = load_suite(suite_file)
    local_store = open_store(store)
    with local_store, holding_machine_lock(local_store.path):
        targets = plan_builds(suite, branch or None) if suite.config.build else [None]
        bar = None
        if progress and err_console.is_terminal:
            bar = Progress(
                SpinnerColumn(),
                # Descriptions hold measurement names: text, never markup.
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
            )
        reporter = _TerminalReporter(bar)
        runs = []
        with bar if bar is not None else contextlib.nullcontext():
            for target in targets:
                settings = RunSettings(tag=tag, repeat=repeat, warmup=warmup, build=target)
                runs.append(run_suite(suite, local_store, settings=settings, reporter=reporter))
                if runs[-1].status.value == "interrupted":
                    break
    if as_json:
        summaries = [result_summary_json(run) for run in runs]
        print_json(summaries[0] if len(summaries) == 1 and not suite.config.build else summaries)
    else:
        for run in runs:
            _print_run_outcome(run, local_store.path)
    if any(run.status.value == "interrupted" for run in runs):
        raise typer.Exit(130)
    if any(run.status.value != "ok" for run in runs):
        raise typer.Exit(1)


def _print_run_outcome(run: "RunDocument", store_path: Path) -> None:
    from perffarm.agent.display import results_table, status_style
    from perffarm.console import console, line

    console.print(results_table(run.results, title=f"{run.project} — {len(run.results)} results"))
    unstable = [r for r in run.results if r.summary and r.summary.warnings]
    if unstable:
        console.print(
            line(
                ("warning:", "yellow"),
                f" {len(unstable)} of {len(run.results)} results are marked ! (unstable, few "
                f"samples or outliers): `perffarm show {str(run.id)[:8]}` says why",
            )
        )
    for record in run.measurements:
        if record.status.value != "ok":
            console.print(
                line((f"{record.name}: {record.status.value}", "red"), f": {record.error or ''}")
            )
    console.print(
        line(
            "run ",
            (run.id, "bold"),
            " ",
            (run.status.value, status_style(run.status.value)),
            f" — stored in {store_path} (see `perffarm show {str(run.id)[:8]}`)",
        )
    )


def runs_command(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs to list."),
    project: str | None = typer.Option(None, "--project", help="Only runs of this project."),
    store: Path | None = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the stored runs, newest first.

    Example: perffarm runs --limit 5
    """
    from rich.table import Table

    from perffarm.agent.display import status_style
    from perffarm.console import console, literal, print_json

    with open_store(store) as local_store:
        rows = local_store.list_runs(limit=limit, project=project)
        uploads = {row.id: local_store.uploaded_to(row.id) for row in rows}
    if as_json:
        print_json(
            [
                {
                    "id": row.id,
                    "project": row.project,
                    "tag": row.tag,
                    "status": row.status,
                    "machine": row.machine,
                    "branch": row.branch,
                    "commit": row.commit,
                    "started_at": row.started_at.isoformat(),
                    "finished_at": row.finished_at.isoformat() if row.finished_at else None,
                    "results": row.result_count,
                    "uploaded_to": uploads[row.id],
                }
                for row in rows
            ]
        )
        return
    if not rows:
        console.print("no runs stored yet — try `perffarm run examples/suite.yaml`")
        return
    table = Table(header_style="bold")
    for column in (
        "id",
        "started",
        "project",
        "tag",
        "status",
        "machine",
        "source",
        "results",
        "uploaded",
    ):
        table.add_column(column, justify="right" if column == "results" else "left")
    for row in rows:
        source = "@".join(part for part in (row.branch, (row.commit or "")[:10]) if part) or "-"
        table.add_row(
            row.id[:8],
            row.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            row.project,
            row.tag or "",
            literal(row.status, status_style(row.status)),
            row.machine,
            source,
            str(row.result_count),
            "yes" if uploads[row.id] else "no",
        )
    console.print(table)


def show_command(
    run_id: str = typer.Argument(
        ..., help="A run id or a unique prefix of one.", show_default=False
    ),
    store: Path | None = STORE_OPTION,
    as_json: bool = JSON_OPTION,
    samples: bool = typer.Option(False, "--samples", help="Also print every sample."),
) -> None:
    """Show one stored run: environment, results with statistics, tables, attachments.

    Example: perffarm show 3f2a9c1e
    """
    from perffarm.model import RunDocument

    with open_store(store) as local_store:
        full_id = resolve_run(local_store, run_id)
        if as_json:
            sys.stdout.write(
                RunDocument.from_json(local_store.load_json(full_id)).to_json(indent=2)
            )
            sys.stdout.write("\n")
            return
        run = local_store.load(full_id)
    _print_run(run, samples=samples)


def resolve_run(store: "LocalStore", run_id: str) -> str:
    """The full id of a stored run; an unknown or ambiguous prefix is a user error."""
    from perffarm.agent.store import StoreError
    from perffarm.console import UserError

    try:
        return store.resolve_id(run_id)
    except StoreError as exc:
        raise UserError(str(exc)) from None


def _print_run(run: "RunDocument", *, samples: bool) -> None:
    from rich.panel import Panel
    from rich.table import Table

    from perffarm.agent.display import format_value, results_table, status_style
    from perffarm.console import console, line, literal

    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    duration = (
        f"{(run.finished_at - run.started_at).total_seconds():.1f} s" if run.finished_at else "-"
    )
    source = run.source
    rows: list[tuple[str, str | Text]] = [
        ("run", str(run.id)),
        ("project", run.project),
        ("tag", run.tag or "-"),
        ("status", literal(run.status.value, status_style(run.status.value))),
        ("machine", run.machine),
        ("started", f"{run.started_at.astimezone().isoformat(timespec='seconds')} ({duration})"),
        (
            "source",
            " ".join(
                part
                for part in (
                    source.repository,
                    source.branch,
                    (source.commit or "")[:12],
                    "(dirty)" if source.dirty else None,
                )
                if part
            )
            or "-",
        ),
        ("fingerprint", run.environment.fingerprint or "-"),
    ]
    if run.error:
        rows.append(("error", literal(run.error, "red")))
    for key, value in rows:
        header.add_row(key, value)
    console.print(Panel(header, title=literal("run"), title_align="left"))

    env = Table(title="environment", title_justify="left", show_header=False, box=None)
    env.add_column(style="bold cyan")
    env.add_column(overflow="fold")
    for section, values in run.environment.sections.items():
        env.add_row(section, _compact(values))
    for section, problem in run.environment.errors.items():
        env.add_row(section, literal(f"collector failed: {problem}", "red"))
    console.print(env)

    measurements = Table(title="measurements", title_justify="left", header_style="bold")
    for column in ("name", "type", "status", "error"):
        measurements.add_column(column, overflow="fold")
    for record in run.measurements:
        measurements.add_row(
            record.name,
            record.type,
            literal(record.status.value, status_style(record.status.value)),
            record.error or "",
        )
    console.print(measurements)
    console.print(results_table(run.results, title="results"))
    for result in run.results:
        if samples:
            shown = ", ".join(format_value(v, result.unit) for v in result.samples)
            console.print(f"  {result.benchmark} {result.metric}: {shown}")
        for warning in result.summary.warnings if result.summary else []:
            console.print(
                line(("warning:", "yellow"), f" {result.benchmark} {result.metric}: {warning}")
            )
    for table_doc in run.tables:
        # The name above the table, not as its title: a title folds to the table's width.
        console.print(literal(f"table {table_doc.name}", "table.title"))
        table = Table(header_style="bold")
        for field in table_doc.fields:
            table.add_column(field)
        for row in table_doc.rows[:50]:
            table.add_row(*("" if value is None else str(value) for value in row))
        console.print(table)
        if len(table_doc.rows) > 50:
            console.print(f"  … {len(table_doc.rows) - 50} more rows (see `perffarm export`)")
    if run.attachments:
        attachments = Table(title="attachments", title_justify="left", header_style="bold")
        for column in ("name", "media type", "size", "sha256"):
            attachments.add_column(column)
        for attachment in run.attachments:
            attachments.add_row(
                attachment.name,
                attachment.media_type,
                format_value(attachment.size, "bytes"),
                attachment.sha256[:16],
            )
        console.print(attachments)
    if run.series:
        series = Table(title="series", title_justify="left", header_style="bold")
        for column in ("name", "points", "min", "mean", "max"):
            series.add_column(column)
        for sampled in run.series:
            points = sampled.values or [0.0]
            series.add_row(
                sampled.name,
                str(len(sampled.values)),
                format_value(min(points), sampled.unit),
                format_value(sum(points) / len(points), sampled.unit),
                format_value(max(points), sampled.unit),
            )
        console.print(series)


def _compact(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"), default=str)
            if len(value) > 120:
                value = value[:117] + "…"
        parts.append(f"{key}={value}")
    return "  ".join(parts)


def system_command(
    as_json: bool = JSON_OPTION,
    directory: Path = typer.Option(
        Path("."), "--dir", help="Describe the disk and git repository of this directory."
    ),
) -> None:
    """Show what the collectors see on this machine, and its fingerprint.

    Example: perffarm system --json
    """
    from rich.table import Table

    from perffarm.agent.record import describe_machine
    from perffarm.console import console, line, print_json

    environment = describe_machine(directory.resolve())
    if as_json:
        print_json(environment.model_dump(mode="json"))
        return
    for section, values in environment.sections.items():
        table = Table(title=section, title_justify="left", show_header=False, box=None)
        table.add_column(style="bold cyan")
        table.add_column(overflow="fold")
        for key, value in values.items():
            shown = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
            table.add_row(key, shown)
        console.print(table)
    for section, problem in environment.errors.items():
        console.print(line((f"{section}: collector failed: {problem}", "red")))
    console.print(
        line(
            ("fingerprint", "bold"),
            f" {environment.fingerprint} (from {', '.join(environment.fingerprint_keys)})",
        )
    )
