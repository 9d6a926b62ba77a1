"""`perffarm changepoints`: the server's change-point detector on a series in a file."""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from perffarm.commands._shared import parse_fraction

if TYPE_CHECKING:
    from rich.text import Text

    from perffarm.analysis.changepoint import ChangePoint
    from perffarm.analysis.series_input import SeriesInput

# The detector's defaults in perffarm.analysis.changepoint, which imports numpy and scipy:
# too slow for every `perffarm --help` (tests/commands/test_startup.py checks they agree).
DEFAULT_WINDOW = 50
DEFAULT_P_VALUE = 0.001
DEFAULT_MIN_MAGNITUDE = 0.02


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
    """Find the change points of a series in a CSV or JSON file, with the detector and
    defaults the results server uses (E-divisive means + t-test).

    Example: perffarm changepoints timings.csv --column seconds --min-magnitude 5%
    """
    from rich.table import Table

    from perffarm.analysis import report
    from perffarm.analysis.changepoint import DetectorSettings, detect
    from perffarm.analysis.noise import noise_score
    from perffarm.analysis.series_input import read_series
    from perffarm.console import UsageError, console, err_console, line, literal, print_json

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
        line(
            f"{file}: {len(series.values)} points of {series.column!r}; window "
            f"{settings.window}, p ≤ {settings.p_value:g}, magnitude ≥ "
            f"{report.format_percent(settings.min_magnitude)}: ",
            (f"{len(points)} change point{'s' if len(points) != 1 else ''}", "bold"),
        )
    )
    if noise.run_to_run is not None:
        console.print(
            f"noise: {noise.level}, point-to-point {noise.run_to_run:.2%}"
            + (f", CV {noise.cv:.2%}" if noise.cv is not None else "")
            + f"; {noise.recommended_repetitions} repetitions per run detect a 2% change"
        )
    for warning in noise.warnings:
        console.print(line(("note:", "yellow"), f" {warning}"))
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
        row: list[str | Text] = [str(point.index)]
        if series.commits is not None:
            row.append(_commit_range(series, point.index))
        if series.times is not None:
            row.append(series.times[point.index])
        ci = point.magnitude_ci
        # No red or green: whether up is worse depends on the metric, which a file does not say.
        row += [
            literal(f"{point.magnitude:+.1%}", "bold"),
            f"[{ci[0]:+.1%}, {ci[1]:+.1%}]" if ci else "–",
            report.format_p(point.p_value),
            f"{report.format_number(point.mean_before)} → {report.format_number(point.mean_after)}",
        ]
        table.add_row(*row)
    console.print(table)


def _commit_range(series: "SeriesInput", index: int) -> str:
    """The commits between the last point of the old level and the first of the new one."""
    assert series.commits is not None
    after = series.commits[index]
    before = series.commits[index - 1] if index > 0 else ""
    return f"{before}..{after}" if before else after


def _point_dict(point: "ChangePoint", series: "SeriesInput") -> dict[str, object]:
    data = point.to_dict()
    if series.commits is not None:
        data["commit"] = series.commits[point.index]
        data["previous_commit"] = series.commits[point.index - 1] if point.index else None
    if series.times is not None:
        data["time"] = series.times[point.index]
    return data
