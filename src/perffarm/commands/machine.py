"""`perffarm machine register|approve|list`: this machine and the others on a results server."""

import typer

from perffarm.commands._shared import ADMIN_HELP, CREDS_HELP, group

app = group(
    "machine",
    (
        "Register this machine with a results server, approve machines, list them.\n\n"
        "Example: perffarm machine register lab-01 --server http://perf.example.org:8080"
    ),
)


def _server_for(server: str | None, creds_dir: str | None) -> str:
    from perffarm.agent.upload import NoCredentials, config_dir, load_credentials, normalize_server
    from perffarm.console import UsageError

    if server:
        return normalize_server(server)
    try:
        return load_credentials(config_dir(creds_dir)).server
    except NoCredentials:
        raise UsageError(
            "give the server with --server URL (no machine is registered on this computer yet)"
        ) from None


def _signed_in_token(creds_dir: str | None, url: str) -> str | None:
    """The signed-in user's access token for this server: the machine is then theirs."""
    from perffarm.agent.login import LoginError, current

    try:
        return current(creds_dir, url).access_token
    except LoginError:
        # Not signed in (or the sign-in ended): an anonymous registration, as before users.
        return None


def _os_user() -> str:
    import getpass
    import os

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"


@app.command("register")
def machine_register(
    name: str = typer.Argument(..., help="The machine's name (alias) on the server."),
    server: str = typer.Option(..., "--server", "-s", help="Results server URL."),
    owner: str | None = typer.Option(
        None, "--owner", help="Who owns the machine. Default: your user name.", show_default=False
    ),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=CREDS_HELP, show_default=False),
    admin_token: str | None = typer.Option(
        None, "--admin-token", envvar="PERFFARM_ADMIN_TOKEN", help=ADMIN_HELP, show_default=False
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
    from perffarm.console import UsageError, UserError, console, print_json
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
        raise UserError(str(exc)) from None
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


@app.command("approve")
def machine_approve(
    name: str = typer.Argument(..., help="The machine to approve."),
    server: str | None = typer.Option(
        None, "--server", "-s", help="Results server URL. Default: the registered one."
    ),
    admin_token: str | None = typer.Option(
        None, "--admin-token", envvar="PERFFARM_ADMIN_TOKEN", help=ADMIN_HELP, show_default=False
    ),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=CREDS_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the machine as JSON."),
) -> None:
    """Approve a machine (admin): its stored runs become visible to everybody.

    Example: PERFFARM_ADMIN_TOKEN=... perffarm machine approve lab-01 --server http://perf:8080
    """
    from perffarm.agent.upload import ServerClient, UploadError
    from perffarm.console import UsageError, UserError, console, print_json

    if not admin_token:
        raise UsageError("approving needs the admin token: --admin-token or PERFFARM_ADMIN_TOKEN")
    url = _server_for(server, creds_dir)
    try:
        with ServerClient(url, token=admin_token, retries=1) as client:
            info = client.approve(name)
    except UploadError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(info.model_dump(mode="json"))
    else:
        console.print(f"approved machine {name!r} on {url}")


@app.command("list")
def machine_list(
    server: str | None = typer.Option(
        None, "--server", "-s", help="Results server URL. Default: the registered one."
    ),
    admin_token: str | None = typer.Option(
        None,
        "--admin-token",
        envvar="PERFFARM_ADMIN_TOKEN",
        help=ADMIN_HELP + " With it, machines not approved yet are listed too.",
        show_default=False,
    ),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=CREDS_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the machines as JSON."),
) -> None:
    """List the machines a results server knows.

    Example: perffarm machine list --server http://perf.example.org:8080 --json
    """
    from rich.table import Table

    from perffarm.agent.upload import ServerClient, UploadError
    from perffarm.console import UserError, console, print_json

    url = _server_for(server, creds_dir)
    try:
        with ServerClient(url, token=admin_token, retries=1) as client:
            machines = list(client.machines())
    except UploadError as exc:
        raise UserError(str(exc)) from None
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
