"""`perffarm upload`: send the stored runs a results server lacks."""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from perffarm.commands._shared import CREDS_HELP

if TYPE_CHECKING:
    from perffarm.agent.upload import UploadReport


def send_pending(store: Path | str | None, server: str | None = None) -> "UploadReport":
    """Upload every pending run with the registered credentials (for `ingest --upload`)."""
    from perffarm.agent.store import LocalStore, StoreError
    from perffarm.agent.upload import NoCredentials, UploadError, config_dir, load_credentials
    from perffarm.agent.upload import upload as do_upload
    from perffarm.console import UserError

    try:
        credentials = load_credentials(config_dir(None), server)
        with LocalStore(store) as local:
            report = do_upload(local, credentials)
    except (NoCredentials, UploadError, StoreError) as exc:
        raise UserError(str(exc)) from None
    if report.refused:
        first_id, reason = next(iter(report.refused.items()))
        raise UserError(f"the server refused run {first_id}: {reason} (it stays pending)")
    return report


def upload_command(
    server: str | None = typer.Option(
        None, "--server", "-s", help="Results server URL. Default: the registered one."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", "-n", help="Show what would be sent; contact nobody."
    ),
    store: str | None = typer.Option(
        None, "--store", help="Local store file (or PERFFARM_STORE).", show_default=False
    ),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=CREDS_HELP, show_default=False),
    batch: int = typer.Option(50, "--batch", min=1, max=1000, help="Runs per request."),
    retries: int = typer.Option(
        4, "--retries", min=0, help="Retries (exponential backoff) on network errors and 5xx."
    ),
    no_probe: bool = typer.Option(
        False, "--no-probe", help="Skip the 1-second network round-trip probe."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON report on stdout."),
) -> None:
    """Send every stored run the results server does not have yet; sending again sends nothing.

    A run is marked uploaded only once the server acknowledged it, so an interrupted upload
    resumes where it stopped. Before sending, the agent measures request/response round
    trips to the server over one connection (transactions/s, latency percentiles) and sends
    the figures beside the runs.

    Example: perffarm upload --server http://perf.example.org:8080
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from perffarm.agent.store import LocalStore, StoreError
    from perffarm.agent.upload import (
        NoCredentials,
        ServerClient,
        UploadError,
        config_dir,
        load_credentials,
    )
    from perffarm.agent.upload import upload as do_upload
    from perffarm.console import UserError, console, err_console, print_json

    try:
        credentials = load_credentials(config_dir(creds_dir), server)
    except NoCredentials as exc:
        raise UserError(str(exc)) from None
    try:
        local = LocalStore(store)
    except StoreError as exc:
        raise UserError(str(exc)) from None
    progress = Progress(
        TextColumn("uploading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=as_json or dry_run,
    )
    task = None

    def on_start(total: int) -> None:
        nonlocal task
        task = progress.add_task("upload", total=total)

    def on_progress(count: int) -> None:
        if task is not None:
            progress.advance(task, count)

    try:
        with (
            local,
            progress,
            ServerClient(credentials.server, token=credentials.token, retries=retries) as client,
        ):
            report = do_upload(
                local,
                credentials,
                dry_run=dry_run,
                batch_runs=batch,
                probe_seconds=0 if no_probe else 1.0,
                client=client,
                on_start=on_start,
                on_progress=on_progress,
            )
    except UploadError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(report.to_json())
    elif dry_run:
        console.print(
            f"would send {report.pending} run(s) to {report.server} as machine {report.machine}"
        )
        for run_id in report.pending_ids:
            console.print(f"  {run_id}")
    elif report.pending == 0:
        console.print(f"nothing to upload: {report.server} has every stored run")
    else:
        line = f"uploaded {len(report.stored)} run(s) to {report.server}"
        if report.already_stored:
            line += f" ({len(report.already_stored)} more were there already)"
        if report.probe:
            p = report.probe
            line += (
                f"; round trips: {p.transactions_per_second:,.0f}/s, "
                f"p50 {p.latency_p50_ms:.3f} ms, p99 {p.latency_p99_ms:.3f} ms"
            )
        console.print(line)
    if report.refused:
        first_id, reason = next(iter(report.refused.items()))
        raise UserError(
            f"the server refused {len(report.refused)} run(s) (they stay pending); "
            f"run {first_id}: {reason}"
        )
    if report.machine_approved is False:
        raise UserError(
            f"machine {report.machine!r} is not approved on {report.server} yet: its runs are "
            "stored there but hidden until an admin runs "
            f"`perffarm machine approve {report.machine} --server {report.server}`"
        )
