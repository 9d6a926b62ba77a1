"""A load test's summary as people read it in a terminal (`perffarm loadtest local|summary`).

It takes the summary as the server answers it (``GET /api/v1/loadtests/{id}/summary``, a
plain dict) and prints it with rich: the figures per metric, latency, each worker's health,
the thresholds and the verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """Print ``summary`` on ``console`` (default: perffarm's standard output console)."""
    from rich.table import Table

    if console is None:
        from perffarm.console import console as standard_output

        console = standard_output

    table = Table(title="load test summary", show_lines=False)
    for column in ("metric", "sum", "p50", "p95", "p99", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    shown = [m for m in summary["metrics"] if not m.endswith(("Total", "TotalBytes"))]
    for metric in shown:
        f = summary["metrics"][metric]
        table.add_row(metric, *(f"{f[k]:g}" for k in ("sum", "p50", "p95", "p99", "max")))
    console.print(table)
    lat = summary["latency_ms"]
    if lat["count"]:
        console.print(
            f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}"
            f"  ({lat['count']} messages)"
        )
    for w in summary["workers"]:
        lag = w["lag_ms"]
        console.print(
            f"worker {w['name']}: {w['status']}, {w['datapoints']} datapoints, {w['peers']} peers, "
            f"tick lag p99 {lag['p99']} ms, CPU avg {w['cpu_percent_avg']}%"
        )
    if summary["missing_workers"]:
        console.print(f"[bold red]missing workers:[/] {', '.join(summary['missing_workers'])}")
    for t in summary["thresholds"]:
        mark = "[green]pass[/]" if t["passed"] else "[bold red]FAIL[/]"
        console.print(f"{mark} {t['metric']}: {t['expression']} (observed {t['observed']})")
    if summary.get("aborted"):
        a = summary["aborted"]
        console.print(
            f"[bold red]aborted during the run:[/] {a['threshold']} (observed {a['observed']})"
        )
    verdict = summary["verdict"]
    console.print(
        f"verdict: [bold]{verdict}[/] "
        f"({summary['datapoints']} datapoints, {summary['peers']} peers)"
    )
