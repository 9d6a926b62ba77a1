"""`perffarm check`: the CI gate. The verdict is perffarm.analysis.gate's; which runs are
compared is perffarm.agent.baseline's; this module reads the options and writes reports.

Its exit code is what a CI job branches on, so each outcome has its own (docs/analysis.md):
a gate that cannot judge (a run missing, the server down, nothing to compare, a crash) must
never look like a regression (1) nor like a pass (0).
"""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from perffarm.commands._shared import open_store, parse_fraction

if TYPE_CHECKING:
    from perffarm.analysis.compare import Override
    from perffarm.analysis.gate import Gate

EXIT_PASSED = 0
EXIT_REGRESSION = 1
# 2 (perffarm.console.EXIT_USAGE): the command line or the --suite file is wrong.
EXIT_NO_VERDICT = 3

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

    Exit codes: 0 no regression; 1 a regression; 2 the command line or --suite file is wrong;
    3 no verdict: the gate could not judge (a run or baseline missing, the server unreachable,
    no result the runs share could be compared, an internal error). Any code but 0 and 1
    means nothing was judged.

    Example: perffarm check --against 3f2a --max-regression 5% --output summary.md
    --junit perf.xml

    Example: perffarm check --against origin/main --server http://perf:8080
    --suite suite.yaml --output summary.md
    """
    from perffarm.analysis import report
    from perffarm.analysis.config import AnalysisConfigError, load_analysis
    from perffarm.analysis.gate import regression_limit
    from perffarm.console import UsageError, UserError, console, print_json

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
    try:
        gate = _judge(
            store_path,
            against=against,
            run=run,
            server=server,
            repo=repo,
            baseline_branch=baseline_branch,
            baseline_runs=baseline_runs,
            project=project,
            limit=limit,
            overrides=overrides,
        )
        reports: list[tuple[Path, str]] = []
        if output is not None:
            reports.append((output, gate.render(chosen if chosen != "table" else "markdown")))
        if junit is not None:
            reports.append((junit, gate.render("junit")))
        if output is None and chosen != "table":
            if chosen == "json":
                print_json(gate.json_report())
            else:
                typer.echo(gate.render(chosen), nl=False)
        else:
            console.print(report.comparison_table(gate.items, title=gate.title()))
    except UserError as exc:
        raise UserError(f"could not judge: {exc}", exit_code=EXIT_NO_VERDICT) from None
    except Exception as exc:
        # A bug or unreadable data must not pass for a verdict either: one line (the first of
        # the error's), and the code of "no verdict".
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(
            f"could not judge: internal error ({type(exc).__name__}: {first}); please report it",
            exit_code=EXIT_NO_VERDICT,
        ) from None
    for path, text in reports:
        _write(path, text)
    if not gate.passed:
        raise typer.Exit(EXIT_REGRESSION)
    if not gate.judged:
        raise UserError(f"could not judge: {gate.why_not_judged()}", exit_code=EXIT_NO_VERDICT)


def _judge(
    store_path: Path | None,
    *,
    against: str,
    run: str | None,
    server: str | None,
    repo: Path,
    baseline_branch: str | None,
    baseline_runs: int,
    project: str | None,
    limit: float,
    overrides: "dict[str, Override] | None",
) -> "Gate":
    """The runs to compare (from the store, the baseline perhaps from a server) and the gate."""
    from perffarm.agent.baseline import latest_run, server_baseline
    from perffarm.analysis.gate import evaluate
    from perffarm.commands.compare import load_run

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
    return evaluate(baseline, contender, limit=limit, overrides=overrides)


def _write(path: Path, text: str) -> None:
    from perffarm.console import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from None
