"""`perffarm login`, `logout`, `whoami` and `token create|list|revoke`."""

from __future__ import annotations

import os
import sys
import webbrowser
from typing import Any

import typer

from perffarm.console import UserError, console, err_console, print_json

_CREDS_HELP = "Credentials directory (default: the user's config directory, PERFFARM_CONFIG_DIR)."
_SERVER_HELP = "The results server, e.g. http://perf.example.org:8080 (default: the last one)."

token_app = typer.Typer(
    name="token",
    help="Personal tokens for scripts and CI.\n\nExample: perffarm token create --scope upload "
    "--expires 90d",
    no_args_is_help=True,
)


def _fail(exc: Exception) -> UserError:
    return UserError(str(exc))


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or (
        sys.platform in ("darwin", "win32")
    )


def login(
    server: str = typer.Option(..., "--server", "-s", help="The results server's URL."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the URL and code."),
    scope: str = typer.Option("upload", "--scope", help="read, upload or admin."),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
) -> None:
    """Sign in: shows a URL and a code to approve in a browser, then keeps the tokens.

    Example: perffarm login --server http://perf.example.org:8080
    """
    from perffarm.agent import login as flow

    def show(codes: dict[str, Any]) -> None:
        err_console.print(
            f"To sign in, open [bold]{codes['verification_uri']}[/] and enter the code "
            f"[bold]{codes['user_code']}[/]"
        )
        err_console.print("waiting for approval in the browser (Ctrl-C to stop) ...")
        if not no_browser and _has_display():
            webbrowser.open(codes.get("verification_uri_complete") or codes["verification_uri"])

    try:
        tokens = flow.device_login(server, scope=scope, show=show)
        flow.save(creds_dir, tokens)
        me = flow.checked(flow.api(tokens, "GET", "/me"))
    except flow.LoginError as exc:
        raise _fail(exc) from None
    console.print(f"signed in to {tokens.server} as {me['name']} ({me['display_name']})")


def logout(
    server: str | None = typer.Option(None, "--server", "-s", help=_SERVER_HELP),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
) -> None:
    """Sign out: revoke the tokens on the server and delete them here.

    Example: perffarm logout --server http://perf.example.org:8080
    """
    from perffarm.agent import login as flow

    try:
        tokens = flow.load(creds_dir, server)
    except flow.LoginError as exc:
        raise _fail(exc) from None
    if tokens is None:
        console.print("not signed in")
        return
    reached = flow.revoke(tokens)
    flow.forget(creds_dir, tokens.server)
    note = "" if reached else " (the server could not be reached to revoke the tokens)"
    console.print(f"signed out of {tokens.server}{note}")


def whoami(
    server: str | None = typer.Option(None, "--server", "-s", help=_SERVER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
) -> None:
    """Show who you are signed in as.

    Example: perffarm whoami --json
    """
    from perffarm.agent import login as flow

    try:
        tokens = flow.current(creds_dir, server)
        me = flow.checked(flow.api(tokens, "GET", "/me"))
    except flow.LoginError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json({"server": tokens.server, **me})
        return
    admin = ", admin" if me.get("is_admin") else ""
    console.print(f"{me['name']} ({me['display_name']}{admin}) on {tokens.server}")


@token_app.command("create")
def token_create(
    scope: str = typer.Option("read", "--scope", help="read, upload or admin."),
    expires: str = typer.Option("90d", "--expires", help="Lifetime: 90d, 12h, 2w, or never."),
    name: str = typer.Option("", "--name", help="What the token is for."),
    server: str | None = typer.Option(None, "--server", "-s", help=_SERVER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the token record as JSON."),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
) -> None:
    """Create a personal token as the signed-in user; it is shown only this once.

    Example: perffarm token create --scope upload --expires 90d --name ci
    """
    from perffarm.agent import login as flow

    try:
        tokens = flow.current(creds_dir, server)
        made = flow.checked(
            flow.api(
                tokens, "POST", "/tokens", json={"scope": scope, "expires": expires, "name": name}
            )
        )
    except flow.LoginError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json(made)
        return
    err_console.print(
        f"token {made['id']} (scopes {' '.join(made['scopes'])}, expires "
        f"{made['expires_at'] or 'never'}); shown only this once:"
    )
    console.print(made["token"])


@token_app.command("list")
def token_list(
    server: str | None = typer.Option(None, "--server", "-s", help=_SERVER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the tokens as JSON."),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
) -> None:
    """List your active tokens (ids, scopes, expiry; never the secrets).

    Example: perffarm token list --json
    """
    from perffarm.agent import login as flow

    try:
        tokens = flow.current(creds_dir, server)
        items = flow.checked(flow.api(tokens, "GET", "/tokens"))["items"]
    except flow.LoginError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json(items)
        return
    for item in items:
        console.print(
            f"{item['id']}  {item['kind']:<8}  {' '.join(item['scopes']):<18}  "
            f"expires {item['expires_at'] or 'never'}  {item['name']}"
        )


@token_app.command("revoke")
def token_revoke(
    token_id: str = typer.Argument(..., help="The token's id (see `perffarm token list`)."),
    server: str | None = typer.Option(None, "--server", "-s", help=_SERVER_HELP),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=_CREDS_HELP, show_default=False),
) -> None:
    """Revoke a token at once.

    Example: perffarm token revoke Ab3dE6gH9jK1
    """
    from perffarm.agent import login as flow

    try:
        tokens = flow.current(creds_dir, server)
        flow.checked(flow.api(tokens, "DELETE", f"/tokens/{token_id}"))
    except flow.LoginError as exc:
        raise _fail(exc) from None
    console.print(f"revoked token {token_id}")


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `perffarm` app."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.add_typer(token_app)
