"""`perffarm agent`: the unattended agent (see agent/unattended.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import platformdirs
import typer

from perffarm.agent.store import STORE_ENV
from perffarm.console import UsageError, UserError


def default_log_file() -> Path:
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
        None,
        "--log-file",
        help=f"The agent's log (rotated at 5 MiB, 5 kept). Default: {default_log_file()}.",
        show_default=False,
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
    store: Path | None = typer.Option(
        None,
        "--store",
        envvar=STORE_ENV,
        help=f"The local store (SQLite file). Default: the user's data directory; or {STORE_ENV}.",
        show_default=False,
    ),
) -> None:
    """Benchmark every new commit of the tracked branches, unattended, and upload the runs.

    Each round fetches the suite's repository, builds and measures each branch head not
    benchmarked yet (once, never again), then uploads what the server lacks. A suite without
    a `build:` section runs once per round. One agent per machine: a second one refuses to
    start while the first runs. SIGTERM or Ctrl-C stops it between steps.

    Example: perffarm agent farm.yaml --every 1h --server http://perf.example.org:8080
    """
    from perffarm.agent.config import load_suite
    from perffarm.agent.lock import holding_machine_lock
    from perffarm.agent.store import LocalStore, StoreError
    from perffarm.agent.unattended import (
        Agent,
        AgentOptions,
        BenchmarkedHeads,
        configure_logging,
        parse_every,
        state_path_for,
    )

    try:
        interval = parse_every(every)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    suites = [load_suite(path) for path in suite_files]
    if branch and not any(suite.config.build for suite in suites):
        raise UsageError("--branch needs a suite with a `build:` section")
    try:
        local_store = LocalStore(store)
    except StoreError as exc:
        raise UserError(str(exc)) from None
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
        )
        with BenchmarkedHeads(state_path_for(local_store.path)) as state:
            code = Agent(options, suites, local_store, state, logger).serve()
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("agent")(agent_command)
