"""`perffarm compare`: two stored runs, result by result."""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from perffarm.commands._shared import open_store, parse_fraction

if TYPE_CHECKING:
    from perffarm.agent.store import LocalStore
    from perffarm.model import RunDocument

# perffarm.analysis.compare.DEFAULT_MIN_EFFECT (tests/commands/test_startup.py checks).
DEFAULT_MIN_EFFECT = 0.02


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
    """Compare two runs of the local store result by result (Mann-Whitney U, bootstrap
    interval of the ratio of medians).

    Example: perffarm compare 3f2a 9c41
    """
    from perffarm.analysis import report
    from perffarm.analysis.compare import compare_runs
    from perffarm.analysis.gate import run_label
    from perffarm.console import console, print_json

    effect = parse_fraction(min_effect, "--min-effect")
    with open_store(store_path, usage=True) as store:
        baseline = load_run(store, run_a)
        contender = load_run(store, run_b)
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
            title=f"{run_label(contender)} against {run_label(baseline)} "
            f"(min effect {report.format_percent(effect)})",
        )
    )


def load_run(store: "LocalStore", run: str) -> "RunDocument":
    """A stored run by id or unique prefix; an unknown one is a usage error (exit 2)."""
    from perffarm.agent.store import StoreError
    from perffarm.console import UsageError

    try:
        return store.load(store.resolve_id(run))
    except StoreError as exc:
        raise UsageError(str(exc)) from None
