"""`perffarm prune`: the agent's disk kept in bounds (local store and build directories)."""

from pathlib import Path

import typer

from perffarm.commands._shared import JSON_OPTION, STORE_OPTION, parse_size


def prune_command(
    older_than: "str | None" = typer.Option(
        None,
        "--older-than",
        help="Remove runs started longer ago, and build directories not built for as long "
        "(90d, 12w, 1y).",
        show_default=False,
    ),
    budget: "str | None" = typer.Option(
        None,
        "--budget",
        help="Then keep the store and build directories under this size (20GiB): the least "
        "recently built directories go first, then the oldest uploaded runs.",
        show_default=False,
    ),
    builds: "list[Path] | None" = typer.Option(
        None,
        "--builds",
        help="A build work directory (repeatable). Default: the agent's default one, and "
        "those of --suite.",
        show_default=False,
    ),
    suites: "list[Path] | None" = typer.Option(
        None, "--suite", help="A suite file whose build work directory to prune (repeatable)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Remove old runs even when no server has acknowledged them."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; remove nothing."),
    store: "Path | None" = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove old runs from the local store (only those a server has acknowledged, unless
    --force) and build directories of branches that are gone or were not built for a while.
    `perffarm agent --prune-after 90d --disk-budget 20GiB` does it after every round.

    Example: perffarm prune --older-than 90d --budget 20GiB --dry-run
    """
    from perffarm.agent.prune import prune
    from perffarm.agent.runner import default_build_root
    from perffarm.commands._shared import open_store
    from perffarm.console import UsageError, console, print_json
    from perffarm.model.lifecycle import parse_retention

    try:
        kept = parse_retention(older_than) if older_than is not None else None
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    limit = parse_size(budget, "--budget") if budget is not None else None
    roots = list(builds or [])
    for suite_file in suites or []:
        roots.append(_suite_work_dir(suite_file))
    if not builds and default_build_root().is_dir():
        roots.append(default_build_root())
    with open_store(store) as local:
        report = prune(local, roots, older_than=kept, budget=limit, force=force, dry_run=dry_run)
    if as_json:
        print_json(report.as_dict())
        return
    verb = "would remove" if dry_run else "removed"
    console.print(f"{verb} {report.runs_removed} runs from the store")
    if report.runs_kept_unacknowledged:
        console.print(
            f"kept {report.runs_kept_unacknowledged} old runs no server has yet "
            "(upload them, or add --force)"
        )
    for build in report.builds_removed:
        console.print(f"{verb} {build.path} ({build.reason}, {build.bytes / 2**20:,.1f} MiB)")
    console.print(
        f"store and builds: {report.bytes_before / 2**20:,.1f} MiB before, "
        f"{report.bytes_after / 2**20:,.1f} MiB after"
    )


def _suite_work_dir(path: Path) -> Path:
    from perffarm.agent.config import load_suite
    from perffarm.agent.runner import build_root
    from perffarm.console import UserError

    root = build_root(load_suite(path))
    if root is None:
        raise UserError(f"{path}: the suite has no build section, so no build directory")
    return root
