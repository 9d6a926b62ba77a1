"""`perffarm machine register|approve|list|grant|ungrant|grants|retire`: this machine and the
others on a results server.

Every command but `register` acts as you, as the web does: signed in (`perffarm login`),
with your rights (an admin approves, an owner sees and shares their machines), or with the
admin token when one is given.
"""

from typing import TYPE_CHECKING

import typer

from perffarm.commands._shared import (
    ACTING_ADMIN_TOKEN_OPTION,
    ACTING_SERVER_OPTION,
    ADMIN_HELP,
    CREDS_DIR_OPTION,
    CREDS_HELP,
    acting_as,
    group,
)

if TYPE_CHECKING:
    from perffarm.client import Client
    from perffarm.model.api import MachineGrant

app = group(
    "machine",
    (
        "Register this machine with a results server, approve machines, list them, let "
        "other users act on yours.\n\n"
        "Example: perffarm machine register lab-01 --server http://perf.example.org:8080"
    ),
)


def _client(url: str, token: str | None) -> "Client":
    from perffarm.client import Client

    return Client(url, token=token, retries=1, timeout=30.0)


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
    server: str | None = ACTING_SERVER_OPTION,
    admin_token: str | None = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: str | None = CREDS_DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the machine as JSON."),
) -> None:
    """Approve a machine (admins): its stored runs become visible to everybody.

    Signed in as an admin user (`perffarm login`), or with the admin token.

    Example: perffarm machine approve lab-01 --server http://perf.example.org:8080
    """
    from perffarm.client.errors import ClientError
    from perffarm.console import UserError, console, print_json

    url, token = acting_as(server, creds_dir, admin_token, needed_for="approving a machine")
    try:
        with _client(url, token) as client:
            info = client.approve_machine(name)
    except ClientError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(info.model_dump(mode="json"))
    else:
        console.print(f"approved machine {name!r} on {url}")


@app.command("list")
def machine_list(
    server: str | None = ACTING_SERVER_OPTION,
    admin_token: str | None = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: str | None = CREDS_DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the machines as JSON."),
) -> None:
    """List the machines a results server knows.

    Signed in, you see your own machines that wait for approval too; an admin sees every
    one. Not signed in: the approved machines.

    Example: perffarm machine list --server http://perf.example.org:8080 --json
    """
    from rich.table import Table

    from perffarm.client.errors import ClientError
    from perffarm.console import UserError, console, print_json

    url, token = acting_as(server, creds_dir, admin_token, needed_for=None)
    try:
        with _client(url, token) as client:
            machines = list(client.machines())
    except ClientError as exc:
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


def _print_grants(name: str, grants: "list[MachineGrant]", as_json: bool) -> None:
    from rich.table import Table

    from perffarm.console import console, print_json

    if as_json:
        print_json([g.model_dump(mode="json") for g in grants])
        return
    if not grants:
        console.print(f"only the owner of {name!r} and admins act on it")
        return
    table = Table("user", "granted by", "since")
    for g in grants:
        table.add_row(g.user, g.granted_by, g.granted_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@app.command("grant")
def machine_grant(
    name: str = typer.Argument(..., help="Your machine."),
    user: str = typer.Argument(..., help="The user who may act on it."),
    server: str | None = ACTING_SERVER_OPTION,
    admin_token: str | None = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: str | None = CREDS_DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the machine's grants as JSON."),
) -> None:
    """Let a user act on your machine: change its alerts and mark a new normal in its series.

    The machine's owner or an admin, signed in (`perffarm login`).

    Example: perffarm machine grant lab-01 bob
    """
    from perffarm.client.errors import ClientError
    from perffarm.console import UserError, err_console

    url, token = acting_as(server, creds_dir, admin_token, needed_for="granting")
    try:
        with _client(url, token) as client:
            grants = client.grant_machine(name, user)
    except ClientError as exc:
        raise UserError(str(exc)) from None
    if not as_json:
        err_console.print(f"{user} may now act on machine {name!r} on {url}")
    _print_grants(name, grants, as_json)


@app.command("ungrant")
def machine_ungrant(
    name: str = typer.Argument(..., help="Your machine."),
    user: str = typer.Argument(..., help="The user who may no longer act on it."),
    server: str | None = ACTING_SERVER_OPTION,
    admin_token: str | None = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: str | None = CREDS_DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the machine's grants as JSON."),
) -> None:
    """End a user's right to act on your machine (given with `perffarm machine grant`).

    Example: perffarm machine ungrant lab-01 bob
    """
    from perffarm.client.errors import ClientError
    from perffarm.console import UserError, err_console

    url, token = acting_as(server, creds_dir, admin_token, needed_for="ending a grant")
    try:
        with _client(url, token) as client:
            grants = client.ungrant_machine(name, user)
    except ClientError as exc:
        raise UserError(str(exc)) from None
    if not as_json:
        err_console.print(f"{user} may no longer act on machine {name!r} on {url}")
    _print_grants(name, grants, as_json)


@app.command("grants")
def machine_grants(
    name: str = typer.Argument(..., help="Your machine."),
    server: str | None = ACTING_SERVER_OPTION,
    admin_token: str | None = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: str | None = CREDS_DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the grants as JSON."),
) -> None:
    """List the users who may act on your machine besides you and the admins.

    Example: perffarm machine grants lab-01 --json
    """
    from perffarm.client.errors import ClientError
    from perffarm.console import UserError

    url, token = acting_as(server, creds_dir, admin_token, needed_for="listing grants")
    try:
        with _client(url, token) as client:
            grants = client.machine_grants(name)
    except ClientError as exc:
        raise UserError(str(exc)) from None
    _print_grants(name, grants, as_json)


@app.command("retire")
def machine_retire(
    name: str = typer.Argument(..., help="Your machine."),
    server: str | None = ACTING_SERVER_OPTION,
    admin_token: str | None = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: str | None = CREDS_DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the machine as JSON."),
) -> None:
    """Retire a machine: its runs stay on every chart and comparison, it uploads no more.
    Its owner or an admin; recorded in the server's audit trail.

    Example: perffarm machine retire lab-01
    """
    from perffarm.client.errors import ClientError
    from perffarm.console import UserError, console, print_json

    url, token = acting_as(server, creds_dir, admin_token, needed_for="Retiring a machine")
    try:
        with _client(url, token) as client:
            machine = client.retire_machine(name)
    except ClientError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(machine.model_dump(mode="json"))
    else:
        console.print(f"machine {name} retired on {url}: its history stays, it uploads no more")
