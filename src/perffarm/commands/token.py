"""`perffarm token create|list|revoke`: a signed-in user's personal tokens."""

import typer

from perffarm.commands._shared import group
from perffarm.commands.login import LOGIN_CREDS_HELP, SERVER_HELP

app = group(
    "token",
    "Personal tokens for scripts and CI.\n\nExample: perffarm token create --scope upload "
    "--expires 90d",
)


@app.command("create")
def token_create(
    scope: str = typer.Option("read", "--scope", help="read, upload or admin."),
    expires: "str | None" = typer.Option(
        None,
        "--expires",
        help="Lifetime: 90d, 12h, 2w, or never (default: 90 days, or until your sign-in "
        "ends, when sooner: a token never outlives the credential that made it).",
    ),
    name: str = typer.Option("", "--name", help="What the token is for."),
    server: str | None = typer.Option(None, "--server", "-s", help=SERVER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the token record as JSON."),
    creds_dir: str | None = typer.Option(
        None, "--creds-dir", help=LOGIN_CREDS_HELP, show_default=False
    ),
) -> None:
    """Create a personal token as the signed-in user; it is shown only this once.

    Example: perffarm token create --scope upload --expires 90d --name ci
    """
    from perffarm.agent import login as flow
    from perffarm.console import UserError, console, err_console, print_json

    try:
        tokens = flow.current(creds_dir, server)
        made = flow.checked(
            flow.api(
                tokens, "POST", "/tokens", json={"scope": scope, "expires": expires, "name": name}
            )
        )
    except flow.LoginError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(made)
        return
    err_console.print(
        f"token {made['id']} (scopes {' '.join(made['scopes'])}, expires "
        f"{made['expires_at'] or 'never'}); shown only this once:"
    )
    console.print(made["token"])


@app.command("list")
def token_list(
    server: str | None = typer.Option(None, "--server", "-s", help=SERVER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the tokens as JSON."),
    creds_dir: str | None = typer.Option(
        None, "--creds-dir", help=LOGIN_CREDS_HELP, show_default=False
    ),
) -> None:
    """List your active tokens (ids, scopes, expiry; never the secrets).

    Example: perffarm token list --json
    """
    from perffarm.agent import login as flow
    from perffarm.console import UserError, console, print_json

    try:
        tokens = flow.current(creds_dir, server)
        items = flow.checked(flow.api(tokens, "GET", "/tokens"))["items"]
    except flow.LoginError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(items)
        return
    for item in items:
        console.print(
            f"{item['id']}  {item['kind']:<8}  {' '.join(item['scopes']):<18}  "
            f"expires {item['expires_at'] or 'never'}  {item['name']}"
        )


@app.command("revoke")
def token_revoke(
    token_id: str = typer.Argument(..., help="The token's id (see `perffarm token list`)."),
    server: str | None = typer.Option(None, "--server", "-s", help=SERVER_HELP),
    creds_dir: str | None = typer.Option(
        None, "--creds-dir", help=LOGIN_CREDS_HELP, show_default=False
    ),
) -> None:
    """Revoke a token at once.

    Example: perffarm token revoke Ab3dE6gH9jK1
    """
    from perffarm.agent import login as flow
    from perffarm.console import UserError, console

    try:
        tokens = flow.current(creds_dir, server)
        flow.checked(flow.api(tokens, "DELETE", f"/tokens/{token_id}"))
    except flow.LoginError as exc:
        raise UserError(str(exc)) from None
    console.print(f"revoked token {token_id}")
