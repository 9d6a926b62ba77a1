"""`perffarm agent`: the unattended agent (see perffarm/agent/unattended.py)."""

from pathlib import Path

import typer

from perffarm.commands._shared import STORE_OPTION

# What default_log_file() gives on Linux, for the help text: platformdirs costs ~15 ms to
# import, too much for every `perffarm --help` (tests/commands/test_agent.py checks it).
LOG_FILE_HELP = (
    "The agent's log (rotated at 5 MiB, 5 kept). "
    "Default: agent.log in the user's log directory (~/.local/state/perffarm/log on Linux)."
)


def default_log_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_log_dir("perffarm")) / "agent.log"


def agent_command(
    suite_files: list[Path] = typer.Argument(
        ..., help="The suite YAML file(s) to benchmark, in this order.", show_default=False
    ),
    every: str = typer.Option(
        "1h", "--every", help="Time between the starts of two rounds: 30s, 10m, 1h, 1d."
    ),
    once: bool = typer.Option(
        False, "--once", help="Run one round and exit (exit code 1 if a run failed); for cron."
    ),
    branch: list[str] = typer.Option(
        [],
        "--branch",
        "-b",
        help="Track only this branch (repeatable); default: the server's branches of interest, "
        "else the suite's.",
    ),
    server: str | None = typer.Option(
        None, "--server", "-s", help="Results server URL. Default: the registered one."
    ),
    creds_dir: Path | None = typer.Option(
        None,
        "--creds-dir",
        help="Directory of credentials.json (env: PERFFARM_CONFIG_DIR).",
        show_default=False,
    ),
    log_file: Path | None = typer.Option(
        None, "--log-file", help=LOG_FILE_HELP, show_default=False
    ),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="Print only warnings and errors on stderr (the log file still gets every line).",
    ),
    no_probe: bool = typer.Option(
        False, "--no-probe", help="Skip the 1-second network round-trip probe before uploads."
    ),
    prune_after: str | None = typer.Option(
        None,
        "--prune-after",
        help="After each round, remove uploaded runs and idle build directories older than "
        "this (90d); build directories of deleted branches go in any case.",
        show_default=False,
    ),
    disk_budget: str | None = typer.Option(
        None,
        "--disk-budget",
        help="After each round, keep the store and build directories under this size (20GiB).",
        show_default=False,
    ),
    store: Path | None = STORE_OPTION,
) -> None:
    """Benchmark every new commit of the tracked branches, unattended, and upload the runs.

    Each round fetches the suite's repository, builds and measures each branch head not
    benchmarked yet (once, never again), then uploads what the server lacks. A suite without
    a `build:` section runs once per round. One agent per machine: a second one refuses to
    start while the first runs. SIGTERM or Ctrl-C stops it between steps.

    Example: perffarm agent farm.yaml --every 1h --server http://perf.example.org:8080

    Kept in bounds: perffarm agent farm.yaml --prune-after 90d --disk-budget 20GiB
    """
    import logging

    from perffarm.agent.config import load_suite
    from perffarm.agent.lock import holding_machine_lock
    from perffarm.agent.unattended import (
        Agent,
        AgentOptions,
        BenchmarkedHeads,
        configure_logging,
        parse_every,
        state_path_for,
    )
    from perffarm.commands._shared import open_store, parse_size
    from perffarm.console import UsageError
    from perffarm.model.lifecycle import parse_retention

    try:
        interval = parse_every(every)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        prune_age = parse_retention(prune_after) if prune_after else None
    except ValueError as exc:
        raise UsageError(f"--prune-after: {exc}") from None
    budget = parse_size(disk_budget, "--disk-budget") if disk_budget else None
    suites = [load_suite(path) for path in suite_files]
    if branch and not any(suite.config.build for suite in suites):
        raise UsageError("--branch needs a suite with a `build:` section")
    local_store = open_store(store)
    with local_store, holding_machine_lock(local_store.path):
        log_path = log_file or default_log_file()
        try:
            logger = configure_logging(
                log_path,
                echo_level=logging.WARNING if quiet else logging.INFO,
            )
        except OSError as exc:
            raise UsageError(
                f"cannot write the log file {log_path}: {exc.strerror} "
                "(choose another with --log-file)"
            ) from None
        options = AgentOptions(
            suite_files=list(suite_files),
            every=None if once else interval,
            once=once,
            branches=list(branch),
            server=server,
            creds_dir=creds_dir,
            probe_seconds=0.0 if no_probe else 1.0,
            prune_after=prune_age,
            disk_budget=budget,
        )
        with BenchmarkedHeads(state_path_for(local_store.path)) as state:
            code = Agent(options, suites, local_store, state, logger).serve()
    if code:
        raise typer.Exit(code)
