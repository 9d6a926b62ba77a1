"""`perffarm login`, `logout` and `whoami`: a user's sign-in on a results server."""

from typing import Any

import typer

LOGIN_CREDS_HELP = (
    "Credentials directory (default: the user's config directory, PERFFARM_CONFIG_DIR)."
)
SERVER_HELP = "The results server, e.g. http://perf.example.org:8080 (default: the last one)."


def _has_display() -> bool:
    import os
    import sys

    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or (
        sys.platform in ("darwin", "win32")
    )


def login_command(
    server: str = typer.Option(..., "--server", "-s", help="The results server's URL."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the URL and code."),
    scope: str = typer.Option("upload", "--scope", help="read, upload or admin."),
    creds_dir: str | None = typer.Option(
        None, "--creds-dir", help=LOGIN_CREDS_HELP, show_default=False
    ),
) -> None:
    """Sign in: shows a URL and a code to approve in a browser, then keeps the tokens.

    Example: perffarm login --server http://perf.example.org:8080
    """
    import webbrowser

    from perffarm.agent import login as flow
    from perffarm.console import UserError, console, err_console, line

    def show(codes: dict[str, Any]) -> None:
        err_console.print(
            line(
                "To sign in, open ",
                (codes["verification_uri"], "bold"),
                " and enter the code ",
                (codes["user_code"], "bold"),
            )
        )
        err_console.print("waiting for approval in the browser (Ctrl-C to stop) ...")
        if not no_browser and _has_display():
            webbrowser.open(codes.get("verification_uri_complete") or codes["verification_uri"])

    try:
        tokens = flow.device_login(server, scope=scope, show=show)
        flow.save(creds_dir, tokens)
        me = flow.checked(flow.api(tokens, "GET", "/me"))
    except flow.LoginError as exc:
        raise UserError(str(exc)) from None
    console.print(f"signed in to {tokens.server} as {me['name']} ({me['display_name']})")


def logout_command(
    server: str | None = typer.Option(None, "--server", "-s", help=SERVER_HELP),
    creds_dir: str | None = typer.Option(
        None, "--creds-dir", help=LOGIN_CREDS_HELP, show_default=False
    ),
) -> None:
    """Sign out: revoke the tokens on the server and delete them here.

    Example: perffarm logout --server http://perf.example.org:8080
    """
    from perffarm.agent import login as flow
    from perffarm.console import UserError, console

    try:
        tokens = flow.load(creds_dir, server)
    except flow.LoginError as exc:
        raise UserError(str(exc)) from None
    if tokens is None:
        console.print("not signed in")
        return
    reached = flow.revoke(tokens)
    flow.forget(creds_dir, tokens.server)
    note = "" if reached else " (the server could not be reached to revoke the tokens)"
    console.print(f"signed out of {tokens.server}{note}")


def whoami_command(
    server: str | None = typer.Option(None, "--server", "-s", help=SERVER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
    creds_dir: str | None = typer.Option(
        None, "--creds-dir", help=LOGIN_CREDS_HELP, show_default=False
    ),
) -> None:
    """Show who you are signed in as.

    Example: perffarm whoami --json
    """
    from perffarm.agent import login as flow
    from perffarm.console import UserError, console, print_json

    try:
        tokens = flow.current(creds_dir, server)
        me = flow.checked(flow.api(tokens, "GET", "/me"))
    except flow.LoginError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json({"server": tokens.server, **me})
        return
    admin = ", admin" if me.get("is_admin") else ""
    console.print(f"{me['name']} ({me['display_name']}{admin}) on {tokens.server}")
