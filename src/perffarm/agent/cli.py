"""The agent's commands: run a suite, and look at, export and import stored runs."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from perffarm.agent.display import (
    format_value,
    result_summary_json,
    results_table,
    status_style,
)
from perffarm.agent.store import STORE_ENV, LocalStore, StoreError
from perffarm.console import (
    UsageError,
    UserError,
    console,
    err_console,
    print_json,
)
from perffarm.model import SCHEMA_VERSION, MeasurementRecord, RunDocument, run_json_schema

STORE_OPTION = typer.Option(
    None,
    "--store",
    envvar=STORE_ENV,
    help=f"The local store (SQLite file). Default: the user's data directory; or {STORE_ENV}.",
    show_default=False,
)
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead.")


def open_store(path: Path | None) -> LocalStore:
    try:
        return LocalStore(path)
    except StoreError as exc:
        raise UserError(str(exc)) from None


class _TerminalReporter:
    """A progress bar per measurement on stderr, so --json output on stdout stays clean."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task: Any = None

    def measurement_started(self, index: int, count: int, name: str, type_name: str) -> None:
        if self._progress is not None:
            label = f"[{index + 1}/{count}] {name} ({type_name})" if count else name
            self._task = self._progress.add_task(label, total=None)

    def progress(self, total: int | None, done: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total, completed=done)

    def measurement_finished(self, record: MeasurementRecord) -> None:
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[self._task]
        if task.total is None:
            self._progress.update(self._task, total=1, completed=1)
        mark = {"ok": "[green]ok[/]", "failed": "[red]failed[/]"}.get(
            record.status.value, f"[yellow]{record.status.value}[/]"
        )
        self._progress.update(self._task, description=f"{task.description} {mark}")


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
    from perffarm.agent.config import load_suite
    from perffarm.agent.lock import holding_machine_lock
    from perffarm.agent.runner import RunSettings, plan_builds, run_suite

    suite = load_suite(suite_file)
    local_store = open_store(store)
    with local_store, holding_machine_lock(local_store.path):
        targets = plan_builds(suite, branch or None) if suite.config.build else [None]
        bar = None
        if progress and err_console.is_terminal:
            bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
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


def _print_run_outcome(run: RunDocument, store_path: Path) -> None:
    console.print(results_table(run.results, title=f"{run.project} — {len(run.results)} results"))
    unstable = [r for r in run.results if r.summary and r.summary.warnings]
    if unstable:
        console.print(
            f"[yellow]warning:[/] {len(unstable)} of {len(run.results)} results are marked ! "
            f"(unstable, few samples or outliers): `perffarm show {str(run.id)[:8]}` says why"
        )
    for record in run.measurements:
        if record.status.value != "ok":
            console.print(f"[red]{record.name}: {record.status.value}[/]: {record.error or ''}")
    style = status_style(run.status.value)
    console.print(
        f"run [bold]{run.id}[/] [{style}]{run.status.value}[/] — stored in {store_path}"
        f" (see `perffarm show {str(run.id)[:8]}`)"
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
            f"[{status_style(row.status)}]{row.status}[/]",
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
    with open_store(store) as local_store:
        full_id = _resolve(local_store, run_id)
        if as_json:
            sys.stdout.write(
                RunDocument.from_json(local_store.load_json(full_id)).to_json(indent=2)
            )
            sys.stdout.write("\n")
            return
        run = local_store.load(full_id)
    _print_run(run, samples=samples)


def _print_run(run: RunDocument, *, samples: bool) -> None:
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    duration = (
        f"{(run.finished_at - run.started_at).total_seconds():.1f} s" if run.finished_at else "-"
    )
    source = run.source
    rows = [
        ("run", str(run.id)),
        ("project", run.project),
        ("tag", run.tag or "-"),
        ("status", f"[{status_style(run.status.value)}]{run.status.value}[/]"),
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
        rows.append(("error", f"[red]{run.error}[/]"))
    for key, value in rows:
        header.add_row(key, value)
    console.print(Panel(header, title="run", title_align="left"))

    env = Table(title="environment", title_justify="left", show_header=False, box=None)
    env.add_column(style="bold cyan")
    env.add_column(overflow="fold")
    for section, values in run.environment.sections.items():
        env.add_row(section, _compact(values))
    for section, problem in run.environment.errors.items():
        env.add_row(section, f"[red]collector failed: {problem}[/]")
    console.print(env)

    measurements = Table(title="measurements", title_justify="left", header_style="bold")
    for column in ("name", "type", "status", "error"):
        measurements.add_column(column, overflow="fold")
    for record in run.measurements:
        measurements.add_row(
            record.name,
            record.type,
            f"[{status_style(record.status.value)}]{record.status.value}[/]",
            record.error or "",
        )
    console.print(measurements)
    console.print(results_table(run.results, title="results"))
    for result in run.results:
        if samples:
            values = ", ".join(format_value(v, result.unit) for v in result.samples)
            console.print(f"  {result.benchmark} {result.metric}: {values}")
        for warning in result.summary.warnings if result.summary else []:
            console.print(f"[yellow]warning:[/] {result.benchmark} {result.metric}: {warning}")
    for table_doc in run.tables:
        table = Table(title=f"table {table_doc.name}", title_justify="left", header_style="bold")
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
        for item in run.attachments:
            attachments.add_row(
                item.name, item.media_type, format_value(item.size, "bytes"), item.sha256[:16]
            )
        console.print(attachments)
    if run.series:
        series = Table(title="series", title_justify="left", header_style="bold")
        for column in ("name", "points", "min", "mean", "max"):
            series.add_column(column)
        for item in run.series:
            values = item.values or [0.0]
            series.add_row(
                item.name,
                str(len(item.values)),
                format_value(min(values), item.unit),
                format_value(sum(values) / len(values), item.unit),
                format_value(max(values), item.unit),
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


def export_command(
    run_id: str = typer.Argument(..., help="A run id or a unique prefix.", show_default=False),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    store: Path | None = STORE_OPTION,
) -> None:
    """Print a stored run's document (JSON), the format `perffarm import` reads back.

    Example: perffarm export 3f2a9c1e > run.json
    """
    with open_store(store) as local_store:
        run = RunDocument.from_json(local_store.load_json(_resolve(local_store, run_id)))
    text = run.to_json(indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def import_command(
    files: list[Path] = typer.Argument(
        ..., help="Run documents (JSON) to import.", show_default=False
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Replace a stored run that has the same id but other content."
    ),
    store: Path | None = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Import run documents (from `perffarm export`) into the local store.

    Example: perffarm import run.json
    """
    documents = [(path, read_run_document(path)) for path in files]  # all checked first
    outcomes = []
    with open_store(store) as local_store:
        for path, run in documents:
            run_id = str(run.id)
            outcome = "imported"
            if local_store.contains(run_id):
                stored = RunDocument.from_json(local_store.load_json(run_id))
                if stored.to_json() == run.to_json():
                    outcome = "already stored"
                elif not replace:
                    raise UserError(
                        f"{path}: a different run with the id {run_id} is already stored "
                        "(use --replace to overwrite it)"
                    )
                else:
                    outcome = "replaced"
            if outcome != "already stored":
                local_store.save(run)
            outcomes.append({"file": str(path), "id": run_id, "outcome": outcome})
    if as_json:
        print_json(outcomes)
    else:
        for item in outcomes:
            console.print(f"{item['file']}: {item['outcome']} run {item['id']}")


def read_run_document(path: Path) -> RunDocument:
    """Read and check one run document; errors name the file and the JSON path."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not JSON: {exc}") from None
    if isinstance(raw, dict) and raw.get("schema") not in (None, SCHEMA_VERSION):
        raise UsageError(
            f"{path}: schema {raw.get('schema')!r} is not {SCHEMA_VERSION!r}: "
            "it was written by another perffarm version (upgrade perffarm to read it)"
        )
    try:
        return RunDocument.model_validate_json(text)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = (
            "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
            or "(document)"
        )
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise UsageError(f"{path}: ${where}: {error['msg']}{more}") from None


def system_command(
    as_json: bool = JSON_OPTION,
    directory: Path = typer.Option(
        Path("."), "--dir", help="Describe the disk and git repository of this directory."
    ),
) -> None:
    """Show what the collectors see on this machine, and its fingerprint.

    Example: perffarm system --json
    """
    from perffarm.agent.record import describe_machine

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
        console.print(f"[red]{section}: collector failed: {problem}[/]")
    console.print(
        f"[bold]fingerprint[/] {environment.fingerprint} "
        f"(from {', '.join(environment.fingerprint_keys)})"
    )


def schema_command(
    document: str = typer.Argument("run", help="Which document: run.", show_default=True),
) -> None:
    """Print the JSON Schema of perffarm's documents.

    Example: perffarm schema run > perffarm.run.schema.json
    """
    if document != "run":
        raise UsageError(f"unknown document {document!r}: the schemas are: run")
    print_json(run_json_schema())


def _resolve(store: LocalStore, run_id: str) -> str:
    try:
        return store.resolve_id(run_id)
    except StoreError as exc:
        raise UserError(str(exc)) from None


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("runs")(runs_command)
    app.command("show")(show_command)
    app.command("export")(export_command)
    app.command("import")(import_command)
    app.command("system")(system_command)
    app.command("schema")(schema_command)
