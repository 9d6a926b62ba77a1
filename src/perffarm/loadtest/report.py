"""A load test's summary as people read it in a terminal (`perffarm loadtest local|summary`).

It takes the summary as the server answers it (``GET /api/v1/loadtests/{id}/summary``, a
plain dict) and prints it with rich: the figures per metric, latency, each worker's health,
the thresholds and the verdict. Every line is built as rich text from literal parts
(perffarm.console.line): names and expressions come from workers and test definitions, and
must print as they are on any console given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """Print ``summary`` on ``console`` (default: perffarm's standard output console)."""
    from rich.table import Table

    from perffarm.console import line, literal

    if console is None:
        from perffarm.console import console as standard_output

        console = standard_output

    table = Table(title=literal("load test summary"), show_lines=False)
    for column in ("metric", "sum", "p50", "p95", "p99", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    shown = [m for m in summary["metrics"] if not m.endswith(("Total", "TotalBytes"))]
    for metric in shown:
        f = summary["metrics"][metric]
        table.add_row(
            literal(metric), *(literal(f"{f[k]:g}") for k in ("sum", "p50", "p95", "p99", "max"))
        )
    console.print(table)
    lat = summary["latency_ms"]
    if lat["count"]:
        console.print(
            line(
                f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  "
                f"max {lat['max']}  ({lat['count']} messages)"
            )
        )
    for w in summary["workers"]:
        lag = w["lag_ms"]
        console.print(
            line(
                f"worker {w['name']}: {w['status']}, {w['datapoints']} datapoints, "
                f"{w['peers']} peers, tick lag p99 {lag['p99']} ms, "
                f"CPU avg {w['cpu_percent_avg']}%"
            )
        )
    if summary["missing_workers"]:
        console.print(
            line(("missing workers:", "bold red"), f" {', '.join(summary['missing_workers'])}")
        )
    for t in summary["thresholds"]:
        mark = ("pass", "green") if t["passed"] else ("FAIL", "bold red")
        console.print(line(mark, f" {t['metric']}: {t['expression']} (observed {t['observed']})"))
    if summary.get("aborted"):
        a = summary["aborted"]
        console.print(
            line(
                ("aborted during the run:", "bold red"),
                f" {a['threshold']} (observed {a['observed']})",
            )
        )
    console.print(
        line(
            "verdict: ",
            (summary["verdict"], "bold"),
            f" ({summary['datapoints']} datapoints, {summary['peers']} peers)",
        )
    )
