"""`perffarm check`: the CI gate. The verdict is perffarm.analysis.gate's; which runs are
compared is perffarm.agent.baseline's; this module reads the options and writes reports."""

from pathlib import Path

import typer

from perffarm.commands._shared import open_store, parse_fraction

# "table" is the terminal's; the others are perffarm.analysis.gate.REPORT_FORMATS.
FORMATS = ("table", "markdown", "json", "junit")
SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".json": "json", ".xml": "junit"}


def check_command(
    against: str = typer.Option(
        ...,
        "--against",
        help="The baseline: a run id (or unique prefix) in the local store; with --server, a "
        "git ref (main, origin/main, a tag or a commit).",
    ),
    run: str | None = typer.Option(
        None, "--run", help="The run to check (default: the latest stored run of the project)."
    ),
    max_regression: str | None = typer.Option(
        None,
        "--max-regression",
        help="Largest slowdown tolerated (e.g. 5% or 0.05; default: the suite's, else 5%).",
    ),
    server: str | None = typer.Option(
        None,
        "--server",
        help="A results server: --against is then a git ref, and the baseline comes from "
        "the server (the fork point of the current branch on it, or its predecessors).",
    ),
    repo: Path = typer.Option(
        Path("."), "--repo", help="The git repository of the code measured (with --server)."
    ),
    baseline_branch: str | None = typer.Option(
        None,
        "--baseline-branch",
        help="The branch name the server knows the baseline by (default: from the ref).",
    ),
    baseline_runs: int = typer.Option(
        1,
        "--baseline-runs",
        min=1,
        max=50,
        help="With --server, pool the samples of this many baseline runs.",
    ),
    project: str | None = typer.Option(
        None, "--project", help="With --server: the project of the run to check."
    ),
    suite: Path | None = typer.Option(
        None,
        "--suite",
        help="A suite YAML whose analysis: section gives max_regression and per-benchmark "
        "overrides (min_effect, direction, ignore).",
    ),
    output_format: str | None = typer.Option(
        None,
        "--format",
        help="table, markdown, json or junit (default: table; with --output, from its suffix).",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        help="Write the report (--format, default Markdown) to this file; the table goes to "
        "the terminal.",
    ),
    junit: Path | None = typer.Option(None, "--junit", help="Also write JUnit XML here."),
    store_path: Path | None = typer.Option(
        None, "--store", help="The local store (default: PERFFARM_STORE or the user data dir)."
    ),
) -> None:
    """CI gate: compare the latest run (or --run) with a baseline run and fail (exit 1) on a
    significant regression beyond the limit. The baseline is a stored run, or with --server a
    git ref: a branch is compared with its fork point, a commit of the ref's branch with its
    predecessors.

    Example: perffarm check --against 3f2a --max-regression 5% --output summary.md
    --junit perf.xml

    Example: perffarm check --against origin/main --server http://perf:8080
    --suite suite.yaml --output summary.md
    """
    from perffarm.agent.baseline import latest_run, server_baseline
    from perffarm.analysis import report
    from perffarm.analysis.config import AnalysisConfigError, load_analysis
    from perffarm.analysis.gate import evaluate, regression_limit
    from perffarm.commands.compare import load_run
    from perffarm.console import EXIT_FAILURE, UsageError, console, print_json

    try:
        analysis = load_analysis(suite) if suite is not None else None
    except AnalysisConfigError as exc:
        raise UsageError(str(exc)) from None
    given = None
    if max_regression is not None:
        given = parse_fraction(max_regression, "--max-regression")
    limit = regression_limit(given, analysis)
    overrides = analysis.override_map() if analysis is not None else None
    if output_format is not None and output_format not in FORMATS:
        raise UsageError(f"--format {output_format!r}: choose one of {', '.join(FORMATS)}")
    chosen = output_format or (
        SUFFIX_FORMATS.get(output.suffix.lower(), "markdown") if output else "table"
    )
    with open_store(store_path, usage=True) as store:
        if server is not None:
            if run is not None:
                contender = load_run(store, run)
            else:
                contender = latest_run(store, project, None)
            baseline = server_baseline(
                server,
                against,
                contender,
                repo=repo,
                branch=baseline_branch,
                runs=baseline_runs,
            )
        else:
            baseline = load_run(store, against)
            if run is not None:
                contender = load_run(store, run)
            else:
                contender = latest_run(store, baseline.project, str(baseline.id))
    gate = evaluate(baseline, contender, limit=limit, overrides=overrides)
    if output is not None:
        _write(output, gate.render(chosen if chosen != "table" else "markdown"))
    if junit is not None:
        _write(junit, gate.render("junit"))
    if output is None and chosen != "table":
        if chosen == "json":
            print_json(gate.json_report())
        else:
            typer.echo(gate.render(chosen), nl=False)
    else:
        console.print(report.comparison_table(gate.items, title=gate.title()))
    if not gate.passed:
        raise typer.Exit(EXIT_FAILURE)


def _write(path: Path, text: str) -> None:
    from perffarm.console import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from None
