"""`perffarm changepoints`, `perffarm compare` and the CI gate `perffarm check`."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from perffarm.agent.store import LocalStore, StoreError
from perffarm.analysis import report
from perffarm.analysis.changepoint import (
    DEFAULT_MIN_MAGNITUDE,
    DEFAULT_P_VALUE,
    DEFAULT_WINDOW,
    ChangePoint,
    DetectorSettings,
    detect,
)
from perffarm.analysis.compare import DEFAULT_MIN_EFFECT, Presence, Verdict, compare_runs
from perffarm.analysis.config import AnalysisConfig, AnalysisConfigError, load_analysis
from perffarm.analysis.noise import noise_score
from perffarm.analysis.series_input import SeriesInput, read_series
from perffarm.console import EXIT_FAILURE, UsageError, console, err_console, print_json
from perffarm.model import RunDocument

_PERCENT = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(%?)\s*$")


def parse_fraction(text: str, option: str) -> float:
    """``2%`` or ``0.02`` → 0.02. A bare number above 1 is refused as ambiguous."""
    match = _PERCENT.match(text)
    if not match:
        raise UsageError(f"{option} {text!r}: write a percentage like 2% (or a fraction, 0.02)")
    number = float(match.group(1))
    if match.group(2):
        number /= 100
    elif number > 1:
        raise UsageError(f"{option} {text!r}: did you mean {text}%? Write 5% or 0.05")
    if number < 0:
        raise UsageError(f"{option} {text!r} cannot be negative")
    return number


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `perffarm` app."""
    app.command(
        "changepoints",
        help=(
            "Find the change points of a series in a CSV or JSON file, with the detector and "
            "defaults the results server uses (E-divisive means + t-test).\n\n"
            "Example: perffarm changepoints timings.csv --column seconds --min-magnitude 5%"
        ),
    )(changepoints_command)
    app.command(
        "compare",
        help=(
            "Compare two runs of the local store result by result (Mann-Whitney U, bootstrap "
            "interval of the ratio of medians).\n\nExample: perffarm compare 3f2a 9c41"
        ),
    )(compare_command)
    app.command(
        "check",
        help=(
            "CI gate: compare the latest run (or --run) with a baseline run and fail (exit 1) "
            "on a significant regression beyond the limit. The baseline is a stored run, or "
            "with --server a git ref: a branch is compared with its fork point, a commit of "
            "the ref's branch with its predecessors.\n\n"
            "Example: perffarm check --against 3f2a --max-regression 5% "
            "--output summary.md --junit perf.xml\n\n"
            "Example: perffarm check --against origin/main --server http://perf:8080 "
            "--suite suite.yaml --output summary.md"
        ),
    )(check_command)


# -- changepoints ----------------------------------------------------------------------------


def changepoints_command(
    file: Path = typer.Argument(..., help="CSV (with a header) or JSON list of the series."),
    column: str | None = typer.Option(
        None, "--column", help="The value column (default: 'value' or the only numeric one)."
    ),
    commit_column: str | None = typer.Option(
        None, "--commit-column", help="Column with the commit of each point (default: 'commit')."
    ),
    time_column: str | None = typer.Option(
        None,
        "--time-column",
        help="Column with each point's time; points are sorted by it (default: 'time').",
    ),
    window: int = typer.Option(DEFAULT_WINDOW, "--window", help="Points per analysis window."),
    p_value: float = typer.Option(
        DEFAULT_P_VALUE, "--p-value", help="Largest p-value of a change point."
    ),
    min_magnitude: str = typer.Option(
        f"{DEFAULT_MIN_MAGNITUDE:.0%}",
        "--min-magnitude",
        help="Smallest relative change of the mean that counts (e.g. 2% or 0.02).",
    ),
    breaks: list[int] = typer.Option(
        [],
        "--break",
        help="Index where a new normal starts (repeatable): no change point across it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    magnitude = parse_fraction(min_magnitude, "--min-magnitude")
    try:
        settings = DetectorSettings(window=window, p_value=p_value, min_magnitude=magnitude)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    series = read_series(file, column=column, commit_column=commit_column, time_column=time_column)
    if not series.values:
        raise UsageError(f"{file} has no values")
    try:
        points = detect(
            series.values,
            window=settings.window,
            p_value=settings.p_value,
            min_magnitude=settings.min_magnitude,
            breaks=breaks,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    noise = noise_score(series.values)
    for note in series.skipped:
        err_console.print(f"skipped {note}")
    if as_json:
        print_json(
            {
                "file": str(file),
                "column": series.column,
                "points": len(series.values),
                "settings": {
                    "window": settings.window,
                    "p_value": settings.p_value,
                    "min_magnitude": settings.min_magnitude,
                    "breaks": sorted(set(breaks)),
                },
                "noise": noise.to_dict(),
                "change_points": [_point_dict(point, series) for point in points],
            }
        )
        return
    console.print(
        f"{file}: {len(series.values)} points of {series.column!r}; window {settings.window}, "
        f"p ≤ {settings.p_value:g}, magnitude ≥ {report.format_percent(settings.min_magnitude)}: "
        f"[bold]{len(points)} change point{'s' if len(points) != 1 else ''}[/]"
    )
    if noise.run_to_run is not None:
        console.print(
            f"noise: {noise.level}, point-to-point {noise.run_to_run:.2%}"
            + (f", CV {noise.cv:.2%}" if noise.cv is not None else "")
            + f"; {noise.recommended_repetitions} repetitions per run detect a 2% change"
        )
    for warning in noise.warnings:
        console.print(f"[yellow]note:[/] {warning}")
    if not points:
        return
    table = Table()
    table.add_column("index", justify="right")
    if series.commits is not None:
        table.add_column("commits")
    if series.times is not None:
        table.add_column("time")
    for name in ("magnitude", "95% CI", "p-value", "mean before → after"):
        table.add_column(name, justify="right")
    for point in points:
        row = [str(point.index)]
        if series.commits is not None:
            row.append(_commit_range(series, point.index))
        if series.times is not None:
            row.append(series.times[point.index])
        ci = point.magnitude_ci
        # No red or green: whether up is worse depends on the metric, which a file does not say.
        row += [
            f"[bold]{point.magnitude:+.1%}[/]",
            f"[{ci[0]:+.1%}, {ci[1]:+.1%}]" if ci else "–",
            report.format_p(point.p_value),
            f"{report.format_number(point.mean_before)} → {report.format_number(point.mean_after)}",
        ]
        table.add_row(*row)
    console.print(table)


def _commit_range(series: SeriesInput, index: int) -> str:
    """The commits between the last point of the old level and the first of the new one."""
    assert series.commits is not None
    after = series.commits[index]
    before = series.commits[index - 1] if index > 0 else ""
    return f"{before}..{after}" if before else after


def _point_dict(point: ChangePoint, series: SeriesInput) -> dict[str, object]:
    data = point.to_dict()
    if series.commits is not None:
        data["commit"] = series.commits[point.index]
        data["previous_commit"] = series.commits[point.index - 1] if point.index else None
    if series.times is not None:
        data["time"] = series.times[point.index]
    return data


# -- compare and check ---------------------------------------------------------------------


def _open_store(path: Path | None) -> LocalStore:
    try:
        return LocalStore(path)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def _load(store: LocalStore, run: str) -> RunDocument:
    try:
        return store.load(store.resolve_id(run))
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def _label(run: RunDocument) -> str:
    parts = [f"`{str(run.id)[:8]}`"]
    if run.source.branch:
        parts.append(run.source.branch)
    if run.source.commit:
        parts.append(f"@{run.source.commit[:10]}")
    return " ".join(parts)


def compare_command(
    run_a: str = typer.Argument(..., help="Baseline run id (or a unique prefix)."),
    run_b: str = typer.Argument(..., help="Contender run id (or a unique prefix)."),
    store_path: Path | None = typer.Option(
        None, "--store", help="The local store (default: PERFFARM_STORE or the user data dir)."
    ),
    min_effect: str = typer.Option(
        f"{DEFAULT_MIN_EFFECT:.0%}",
        "--min-effect",
        help="Smallest change of the median that counts (e.g. 2% or 0.02).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    effect = parse_fraction(min_effect, "--min-effect")
    with _open_store(store_path) as store:
        baseline = _load(store, run_a)
        contender = _load(store, run_b)
    items = compare_runs(baseline, contender, min_effect=effect)
    if as_json:
        print_json(
            report.json_report(
                items, baseline=str(baseline.id), contender=str(contender.id), min_effect=effect
            )
        )
        return
    console.print(
        report.comparison_table(
            items,
            title=f"{_label(contender)} against {_label(baseline)} "
            f"(min effect {report.format_percent(effect)})",
        )
    )


_FORMATS = ("table", "markdown", "json", "junit")
_SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".json": "json", ".xml": "junit"}


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
    analysis = _suite_analysis(suite)
    if max_regression is not None:
        limit = parse_fraction(max_regression, "--max-regression")
    elif analysis is not None and analysis.max_regression is not None:
        limit = analysis.max_regression
    else:
        limit = DEFAULT_MAX_REGRESSION
    overrides = analysis.override_map() if analysis is not None else None
    if output_format is not None and output_format not in _FORMATS:
        raise UsageError(f"--format {output_format!r}: choose one of {', '.join(_FORMATS)}")
    chosen = output_format or (
        _SUFFIX_FORMATS.get(output.suffix.lower(), "markdown") if output else "table"
    )
    with _open_store(store_path) as store:
        if server is not None:
            contender = _load(store, run) if run is not None else _latest(store, project, None)
            baseline = server_baseline(
                server,
                against,
                contender,
                repo=repo,
                branch=baseline_branch,
                runs=baseline_runs,
            )
        else:
            baseline = _load(store, against)
            if run is not None:
                contender = _load(store, run)
            else:
                contender = _latest(store, baseline.project, str(baseline.id))
    # The limit is the minimum effect: "slower" then already means "beyond the limit".
    items = report.ordered(compare_runs(baseline, contender, overrides, min_effect=limit))
    regressions = [i for i in items if i.presence is Presence.BOTH and i.verdict is Verdict.SLOWER]
    rendered: dict[str, Callable[[], Any]] = {
        "markdown": lambda: report.markdown_report(
            items,
            baseline_label=_label(baseline),
            contender_label=_label(contender),
            max_regression=limit,
        ),
        "junit": lambda: report.junit_report(items, max_regression=limit),
        "json": lambda: report.json_report(
            items,
            baseline=str(baseline.id),
            contender=str(contender.id),
            max_regression=limit,
            regressions=len(regressions),
            passed=not regressions,
        ),
    }
    table_title = (
        f"{_label(contender)} against {_label(baseline)}: "
        + (
            f"{len(regressions)} slower beyond {report.format_percent(limit)}"
            if regressions
            else "no regression"
        )
        + f" (limit {report.format_percent(limit)})"
    )
    if output is not None:
        text = _render(rendered, chosen if chosen != "table" else "markdown")
        _write(output, text)
    if junit is not None:
        _write(junit, rendered["junit"]())
    if output is None and chosen != "table":
        if chosen == "json":
            print_json(rendered["json"]())
        else:
            typer.echo(_render(rendered, chosen), nl=False)
    else:
        console.print(report.comparison_table(items, title=table_title))
    if regressions:
        raise typer.Exit(EXIT_FAILURE)


def _render(rendered: dict[str, Callable[[], Any]], chosen: str) -> str:
    value = rendered[chosen]()
    return json.dumps(value, indent=2) + "\n" if chosen == "json" else value


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from None


# -- check: the suite's analysis section, and baselines from a server that follow git --------

DEFAULT_MAX_REGRESSION = 0.05


def _suite_analysis(path: Path | None) -> AnalysisConfig | None:
    if path is None:
        return None
    try:
        return load_analysis(path)
    except AnalysisConfigError as exc:
        raise UsageError(str(exc)) from None


def _latest(store: LocalStore, project: str | None, besides: str | None) -> RunDocument:
    rows = [row for row in store.list_runs(project=project, limit=50) if row.id != besides]
    if not rows:
        what = f"of {project!r} " if project else ""
        extra = " besides the baseline" if besides else ""
        raise UsageError(f"the store has no run {what}{extra}; run the suite first or give --run")
    return store.load(rows[0].id)


def _git(repo: Path, *args: str) -> str | None:
    """The output of a git command in ``repo``, or None when git says no."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise UsageError("--against REF with --server needs git on the PATH") from None
    return done.stdout.strip() if done.returncode == 0 else None


def _ref_branch(repo: Path, ref: str) -> str | None:
    """The branch a ref names (``origin/main`` → ``main``), or None for a tag or a commit."""
    full = _git(repo, "rev-parse", "--symbolic-full-name", ref) or ""
    if full.startswith("refs/heads/"):
        return full.removeprefix("refs/heads/")
    if full.startswith("refs/remotes/"):
        # refs/remotes/<remote>/<branch>; remote names cannot contain '/'.
        return full.removeprefix("refs/remotes/").split("/", 1)[-1]
    return None


@dataclass(frozen=True)
class BaselineQuery:
    """What to ask the server for, and how to say it to the user."""

    params: dict[str, str]
    description: str


def plan_baseline(
    repo: Path, ref: str, contender: RunDocument, *, branch: str | None, runs: int
) -> BaselineQuery:
    """Decide the baseline of ``contender`` against git ``ref`` (see docs/analysis.md).

    - the contender's commit is in the ref's history (a default-branch commit): the runs
      of the ref's branch before it, its predecessors;
    - otherwise (a feature branch): the runs on the ref's branch at the fork point
      ``git merge-base REF COMMIT``, else the latest ones before the fork point's time;
    - a ref that is no branch (a tag, a commit): the runs at exactly that commit.
    """
    if _git(repo, "rev-parse", "--git-dir") is None:
        raise UsageError(f"{repo} is not a git repository: give --repo with the code measured")
    target = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if target is None:
        raise UsageError(f"--against {ref!r} is not a commit, branch or tag in {repo}")
    commit = contender.source.commit or _git(repo, "rev-parse", "HEAD")
    if not commit or _git(repo, "cat-file", "-e", f"{commit}^{{commit}}") is None:
        raise UsageError(
            f"the run's commit {commit or '(none)'} is not in {repo}: check --repo, or fetch "
            "more history (git fetch --unshallow)"
        )
    params = {
        "project": contender.project,
        "limit": str(runs),
    }
    if contender.environment.fingerprint:
        params["fingerprint"] = contender.environment.fingerprint
    else:
        params["machine"] = contender.machine
    branch = branch or _ref_branch(repo, ref)
    if branch is None:
        params.update(mode="at", commit=target)
        return BaselineQuery(params, f"{ref} ({target[:10]})")
    params["branch"] = branch
    fork = _git(repo, "merge-base", target, commit)
    if fork is None:
        raise UsageError(f"{ref} and the run's commit {commit[:10]} have no common history")
    if fork == commit:
        time = _git(repo, "show", "-s", "--format=%cI", commit) or ""
        params.update(mode="before", commit=commit, commit_time=time)
        return BaselineQuery(params, f"the runs on {branch} before {commit[:10]}")
    time = _git(repo, "show", "-s", "--format=%cI", fork) or ""
    params.update(mode="at", commit=fork, commit_time=time)
    return BaselineQuery(params, f"the fork point {fork[:10]} on {branch}")


def server_baseline(
    server: str,
    ref: str,
    contender: RunDocument,
    *,
    repo: Path,
    branch: str | None,
    runs: int,
) -> RunDocument:
    """The baseline run from the server; several runs are pooled into one document."""
    import httpx

    plan = plan_baseline(repo, ref, contender, branch=branch, runs=runs)
    base = server.rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            answer = client.get("/api/v1/baseline", params=plan.params)
            if answer.status_code != 200:
                raise UsageError(f"{base} refused the baseline query: {_detail(answer)}")
            found = answer.json()["runs"]
            if not found:
                print_where = plan.params.get("fingerprint") or plan.params.get("machine")
                raise UsageError(
                    f"{base} has no run of {contender.project!r} for {plan.description} on "
                    f"{print_where}: run the suite there first"
                )
            documents = []
            for item in found:
                fetched = client.get(f"/api/v1/runs/{item['id']}")
                if fetched.status_code != 200:
                    raise UsageError(f"{base}: run {item['id']}: {_detail(fetched)}")
                documents.append(RunDocument.model_validate_json(fetched.content))
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach {base}: {exc}; check --server") from None
    err_console.print(
        f"baseline: {plan.description}: "
        + ", ".join(f"{d.id!s:.8} @{(d.source.commit or '')[:10]}" for d in documents)
    )
    first = documents[0]
    if len(documents) == 1:
        return first
    return first.model_copy(update={"results": [r for d in documents for r in d.results]})


def _detail(answer: Any) -> str:
    try:
        return str(answer.json().get("detail") or answer.status_code)
    except ValueError:
        return f"HTTP {answer.status_code}"
