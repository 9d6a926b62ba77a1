"""`perffarm ingest`: read another tool's results into the local store; `perffarm formats`."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from perffarm.commands._shared import STORE_ENV

if TYPE_CHECKING:
    from rich.table import Table

    from perffarm.adapters.base import Adapter, Parsed
    from perffarm.model import Result

# perffarm.adapters.registry.AUTO (tests/commands/test_startup.py checks they agree).
AUTO = "auto"
DEFAULT_PROJECT = "default"


def ingest_command(
    path: Path = typer.Argument(
        ..., help="A tool's output file, or a directory (asv results, Criterion's target)."
    ),
    format_name: str = typer.Option(
        AUTO, "--format", "-f", help="The format (see `perffarm formats`); auto detects it."
    ),
    project: str = typer.Option(DEFAULT_PROJECT, "--project", help="Project of the stored run."),
    tag: str | None = typer.Option(None, "--tag", help="Tag of the stored run (e.g. nightly)."),
    benchmark: str | None = typer.Option(
        None,
        "--benchmark",
        help="Name the benchmark (an input of one benchmark): a suite's measurement name "
        "puts the results in that measurement's series.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead."),
    store: Path | None = typer.Option(
        None,
        "--store",
        envvar=STORE_ENV,
        help="The local store (SQLite file). Default: the user's data directory.",
        show_default=False,
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read and show the results, store nothing."
    ),
    upload: bool = typer.Option(
        False,
        "--upload",
        help="Then send the stored runs the registered server lacks (like `perffarm upload`).",
    ),
    server: str | None = typer.Option(
        None, "--server", help="With --upload: the results server (default: the registered one)."
    ),
) -> None:
    """Read a benchmark tool's results and store them as a run of this machine.

    Example: perffarm ingest .benchmarks/results.json --project api --tag nightly --upload

    Example: perffarm ingest pgbench.log --format pgbench --benchmark oltp
    """

    from perffarm.adapters.base import AdapterError
    from perffarm.adapters.registry import adapter_names, parse_path
    from perffarm.console import UsageError, console, print_json

    if format_name != AUTO and format_name not in adapter_names():
        known = ", ".join(adapter_names())
        raise UsageError(f"unknown format {format_name!r}; use auto or one of: {known}")
    if not project.strip():
        raise UsageError("--project must not be empty")
    # Everything is parsed before anything is stored: a bad input leaves the store untouched.
    # An input that cannot be read is a usage error (exit code 2), as a file given to
    # `perffarm import` is: the file named on the command line is wrong.
    try:
        adapter, parsed = parse_path(path, format_name)
    except AdapterError as exc:
        raise UsageError(str(exc)) from None
    if not parsed.results:
        raise UsageError(f"{path}: the {adapter.name} input holds no results; nothing stored")
    if benchmark is not None:
        if not benchmark.strip():
            raise UsageError("--benchmark must not be empty")
        try:
            parsed = parsed.named(benchmark)
        except AdapterError as exc:
            raise UsageError(f"--benchmark: {exc}") from None
    _check_indexable(path, parsed, project, tag)
    run_id = None
    if not dry_run:
        from perffarm.agent.record import record_ingested_run

        document = record_ingested_run(
            parsed,
            project=project,
            tag=tag,
            store_path=store,
            source_name=str(path),
            format_name=adapter.name,
        )
        run_id = str(document.id)
        results = document.results
    else:
        results = parsed.results
    report = None
    if upload and not dry_run:
        from perffarm.commands.upload import send_pending

        report = send_pending(store, server)
    if as_json:
        summary = _summary_json(path, adapter, parsed, results, run_id, dry_run)
        if report is not None:
            summary["upload"] = report.to_json()
        print_json(summary)
        return
    console.print(_results_table(results, adapter, path))
    if dry_run:
        console.print(f"dry run: {len(results)} results read, nothing stored")
    else:
        console.print(f"stored run {run_id} ({len(results)} results, project {project})")
    if report is not None:
        console.print(f"uploaded {len(report.stored)} run(s) to {report.server}")


def _check_indexable(path: Path, parsed: "Parsed", project: str, tag: str | None) -> None:
    """Refuse names no results server could keep (model.run.index_problems), before the
    run is stored: it would stay pending for good."""
    from perffarm.console import UsageError
    from perffarm.model import RunDocument, Source
    from perffarm.model.run import index_problems

    # What the run will hold of the input and the options; the rest the agent adds.
    draft = RunDocument(
        project=project,
        tag=tag,
        machine="-",
        source=parsed.source or Source(),
        results=parsed.results,
    )
    problems = index_problems(draft)
    if problems:
        field, problem = problems[0]
        if field.startswith("results."):
            result = parsed.results[int(field.split(".")[1])]
            field = f"{field.split('.')[2]} of {result.benchmark[:60]!r}"
        option = {"project": "--project", "tag": "--tag"}.get(field, field)
        raise UsageError(f"{path}: {option}: {problem}: no results server could keep the run")


def formats_command(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead."),
) -> None:
    """List the formats `perffarm ingest` reads (every registered adapter).

    Example: perffarm formats --json
    """
    from rich.table import Table

    from perffarm.adapters.base import AdapterError
    from perffarm.adapters.registry import adapter_names, get_adapter
    from perffarm.console import console, literal, print_json

    rows: list[dict[str, str | None]] = []
    for name in adapter_names():
        try:
            adapter = get_adapter(name)
            rows.append({"name": name, "description": adapter.description, "error": None})
        except AdapterError as exc:
            rows.append({"name": name, "description": "", "error": str(exc)})
    if as_json:
        print_json(rows)
        return
    table = Table(header_style="bold")
    table.add_column("format")
    table.add_column("reads", overflow="fold")
    for row in rows:
        # A plug-in's description is text (perffarm.console): "[...]" prints as written.
        description = row["description"] or ""
        table.add_row(row["name"], description or literal(row["error"] or "", "red"))
    console.print(table)


def _median(result: "Result") -> float | None:
    """The summary's median, else the samples' (an adapter may leave the summary out)."""
    import statistics

    if result.summary is not None and result.summary.median is not None:
        return result.summary.median
    return statistics.median(result.samples) if result.samples else None


def _results_table(results: "list[Result]", adapter: "Adapter", path: Path) -> "Table":
    from rich.table import Table

    from perffarm.agent.display import format_params, format_value

    # Names come from the tool's output: "test_sort[10]" is text, and perffarm's console
    # shows every string as it is (perffarm.console).
    table = Table(title=f"{path.name} ({adapter.name})", title_justify="left", header_style="bold")
    table.add_column("benchmark", overflow="fold")
    table.add_column("params", overflow="fold")
    table.add_column("metric", overflow="fold")
    table.add_column("n", justify="right")
    table.add_column("median", justify="right", no_wrap=True)
    table.add_column("tool unit")
    for result in results:
        table.add_row(
            result.benchmark,
            format_params(result.params),
            result.metric,
            str(len(result.samples)),
            format_value(_median(result), result.unit),
            result.original_unit or result.unit or "-",
        )
    return table


def _summary_json(
    path: Path,
    adapter: "Adapter",
    parsed: "Parsed",
    results: "list[Result]",
    run_id: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    import math

    def finite(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    return {
        "path": str(path),
        "format": adapter.name,
        "stored": not dry_run,
        "run_id": run_id,
        "environment": parsed.environment,
        "results": [
            {
                "benchmark": result.benchmark,
                "params": result.params,
                "metric": result.metric,
                "unit": result.unit,
                "original_unit": result.original_unit,
                "direction": str(result.direction),
                "n": len(result.samples),
                "median": finite(_median(result)),
                "warmup_n": len(result.warmup_samples),
            }
            for result in results
        ],
    }
