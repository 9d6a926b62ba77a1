"""Agent-side commands that talk to a results server: `perffarm upload`, `perffarm machine`."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

import typer

from perffarm.console import UsageError, UserError, console, err_console, print_json

machine_app = typer.Typer(
    name="machine",
    help=(
        "Register this machine with a results server, approve machines, list them.\n\n"
        "Example: perffarm machine register lab-01 --server http://perf.example.org:8080"
    ),
    no_args_is_help=True,
)

_CREDS_HELP = "Directory of credentials.json (or PERFFARM_CONFIG_DIR)."
_ADMIN_HELP = "The server's admin token (or PERFFARM_ADMIN_TOKEN)."


def _server_for(server: str | None, creds_dir: str | None) -> str:
    from perffarm.agent.upload import NoCredentials, config_dir, load_credentials, normalize_server

    if server:
        return normalize_server(server)
    try:
        return load_credentials(config_dir(creds_dir)).server
    except NoCredentials:
        raise UsageError(
            "give the server with --server URL (no machine is registered on this computer yet)"
        ) from None


def _fail(exc: Exception) -> UserError:
    return UserError(str(exc))


def send_pending(store: Path | str | None, server: str | None = None) -> Any:
    """Upload every pending run with the registered credentials (for `ingest --upload`)."""
    from perffarm.agent.store import LocalStore, StoreError
    from perffarm.agent.upload import NoCredentials, UploadError, config_dir, load_credentials
    from perffarm.agent.upload import upload as do_upload

    try:
        credentials = load_credentials(config_dir(None), server)
        with LocalStore(store) as local:
            report = do_upload(local, credentials)
    except (NoCredentials, UploadError, StoreError) as exc:
        raise _fail(exc) from None
    if report.refused:
        first_id, reason = next(iter(report.refused.items()))
        raise UserError(f"the server refused run {first_id}: {reason} (it stays pending)")
    return report


def upload(
    server: str | None = typer.Option(
        None, "--server", "-s", help="Results server URL. Default: the registered one."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", "-n", help="Show what would be sent; contact nobody."
    ),
    store: str | None = typer.Option(
        None, "--store", help="Local store file (or PERFFARM_STORE).", show_default=False
    ),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
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

    try:
        credentials = load_credentials(config_dir(creds_dir), server)
    except NoCredentials as exc:
        raise _fail(exc) from None
    try:
        local = LocalStore(store)
    except StoreError as exc:
        raise _fail(exc) from None
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
        raise _fail(exc) from None
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


def _signed_in_token(creds_dir: str | None, url: str) -> str | None:
    """The signed-in user's access token for this server: the machine is then theirs."""
    from perffarm.agent.login import LoginError, current

    try:
        return current(creds_dir, url).access_token
    except LoginError:
        # Not signed in (or the sign-in ended): an anonymous registration, as before users.
        return None


@machine_app.command("register")
def machine_register(
    name: str = typer.Argument(..., help="The machine's name (alias) on the server."),
    server: str = typer.Option(..., "--server", "-s", help="Results server URL."),
    owner: str | None = typer.Option(
        None, "--owner", help="Who owns the machine. Default: your user name.", show_default=False
    ),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
    admin_token: str | None = typer.Option(
        None, "--admin-token", envvar="PERFFARM_ADMIN_TOKEN", help=_ADMIN_HELP, show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the answer (without the secret)."),
) -> None:
    """Register this machine; its secret is saved (mode 0600) for `perffarm upload`.

    The server shows the secret only once; perffarm keeps it in credentials.json in your
    config directory. Runs uploaded before an admin approves the machine are stored but
    hidden.

    Example: perffarm machine register lab-01 --server http://perf.example.org:8080
    """
    from perffarm.agent.upload import (
        Credentials,
        ServerClient,
        UploadError,
        config_dir,
        normalize_server,
        save_credentials,
    )
    from perffarm.model.api import valid_machine_name

    if not valid_machine_name(name):
        raise UsageError(
            f"machine name {name!r}: use letters, digits, '.', '_' and '-' (at most 100)"
        )
    owner = owner or _os_user()
    url = normalize_server(server)
    token = admin_token or _signed_in_token(creds_dir, url)
    try:
        with ServerClient(url, token=token, retries=1) as client:
            client.health()
            answer = client.register(name, owner)
        path = save_credentials(
            config_dir(creds_dir), Credentials(server=url, machine=name, secret=answer.secret)
        )
    except UploadError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise UserError(f"registered {name!r} but cannot save its credentials: {exc}") from None
    if as_json:
        print_json(
            {
                "server": url,
                "machine": name,
                "owner": answer.owner,
                "approved": answer.approved,
                "credentials": str(path),
            }
        )
        return
    console.print(
        f"registered machine {name!r} (owner {answer.owner}) on {url}; secret saved in {path}"
    )
    if not answer.approved:
        console.print(
            f"an admin must approve it before its runs are shown: "
            f"perffarm machine approve {name} --server {url}"
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"


@machine_app.command("approve")
def machine_approve(
    name: str = typer.Argument(..., help="The machine to approve."),
    server: str | None = typer.Option(
        None, "--server", "-s", help="Results server URL. Default: the registered one."
    ),
    admin_token: str | None = typer.Option(
        None, "--admin-token", envvar="PERFFARM_ADMIN_TOKEN", help=_ADMIN_HELP, show_default=False
    ),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the machine as JSON."),
) -> None:
    """Approve a machine (admin): its stored runs become visible to everybody.

    Example: PERFFARM_ADMIN_TOKEN=... perffarm machine approve lab-01 --server http://perf:8080
    """
    from perffarm.agent.upload import ServerClient, UploadError

    if not admin_token:
        raise UsageError("approving needs the admin token: --admin-token or PERFFARM_ADMIN_TOKEN")
    url = _server_for(server, creds_dir)
    try:
        with ServerClient(url, token=admin_token, retries=1) as client:
            info = client.approve(name)
    except UploadError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json(info.model_dump(mode="json"))
    else:
        console.print(f"approved machine {name!r} on {url}")


@machine_app.command("list")
def machine_list(
    server: str | None = typer.Option(
        None, "--server", "-s", help="Results server URL. Default: the registered one."
    ),
    admin_token: str | None = typer.Option(
        None,
        "--admin-token",
        envvar="PERFFARM_ADMIN_TOKEN",
        help=_ADMIN_HELP + " With it, machines not approved yet are listed too.",
        show_default=False,
    ),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the machines as JSON."),
) -> None:
    """List the machines a results server knows.

    Example: perffarm machine list --server http://perf.example.org:8080 --json
    """
    from rich.table import Table

    from perffarm.agent.upload import ServerClient, UploadError

    url = _server_for(server, creds_dir)
    try:
        with ServerClient(url, token=admin_token, retries=1) as client:
            machines = list(client.machines())
    except UploadError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json([m.model_dump(mode="json", exclude={"metadata"}) for m in machines])
        return
    table = Table("name", "owner", "approved", "last seen", "fingerprint", "round trips/s")
    for m in machines:
        table.add_row(
            m.name,
            m.owner,
            "yes" if m.approved else "no",
            m.last_seen.strftime("%Y-%m-%d %H:%M") if m.last_seen else "-",
            (m.fingerprint or "-")[:16],
            f"{m.probe.transactions_per_second:,.0f}" if m.probe else "-",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `perffarm` app."""
    app.command("upload")(upload)
    app.add_typer(machine_app)
