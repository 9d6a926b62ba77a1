"""`perffarm user add|list|disable|approve|delete`: users of the results server (admin)."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from perffarm.commands._serving import need_server_extra, open_and_migrate
from perffarm.commands._shared import DATABASE_HELP, group

if TYPE_CHECKING:
    from types import ModuleType

    import sqlalchemy as sa

app = group(
    "user",
    "Users of the results server (admin).\n\nExample: perffarm user add alice --admin "
    "--password-stdin --database ./farm.db",
)

# An action on the database directly: (connection, perffarm.server.store.users) -> the view.
Action = Callable[["sa.Connection", "ModuleType"], dict[str, Any]]
# The same action through the API: (method, path under /api/v1, JSON body).
Remote = tuple[str, str, dict[str, Any] | None]


def _user_call(
    database: str | None, server_url: str | None, token: str | None, action: Action, remote: Remote
) -> dict[str, Any]:
    """Run against the database directly, or through the API with an admin token."""
    from perffarm.console import UsageError, UserError

    if server_url:
        import httpx

        if not token:
            raise UsageError("--server needs --admin-token (or PERFFARM_ADMIN_TOKEN)")
        method, path, body = remote
        try:
            answer = httpx.request(
                method,
                server_url.rstrip("/") + "/api/v1" + path,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise UserError(f"cannot reach {server_url}: {exc}") from None
        if answer.status_code >= 400:
            try:
                detail = answer.json().get("detail")
            except ValueError:
                detail = f"HTTP {answer.status_code}"
            raise UserError(f"the server refused: {detail}")
        result: dict[str, Any] = answer.json()
        return result
    need_server_extra()
    from perffarm.server.core.errors import PerffarmError
    from perffarm.server.store import users

    engine, _, _ = open_and_migrate(database or "./farm.db")
    try:
        with engine.connect() as conn:
            return action(conn, users)
    except PerffarmError as exc:
        raise UserError(str(exc)) from None
    finally:
        engine.dispose()


_USER_DB = typer.Option(None, "--database", "-d", envvar="PERFFARM_DATABASE", help=DATABASE_HELP)
_USER_SERVER = typer.Option(None, "--server", help="Use the API of this server instead.")
_USER_TOKEN = typer.Option(
    None, "--admin-token", envvar="PERFFARM_ADMIN_TOKEN", help="For --server."
)


@app.command("add")
def user_add(
    name: str = typer.Argument(..., help="User name: letters, digits, '.', '_', '-'."),
    admin: bool = typer.Option(False, "--admin", help="Make the user an admin."),
    display_name: str | None = typer.Option(None, "--display-name", help="Shown on pages."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read a password."),
    database: str | None = _USER_DB,
    server_url: str | None = _USER_SERVER,
    token: str | None = _USER_TOKEN,
) -> None:
    """Add a local account (a password read from stdin lets it sign in on the web).

    Example: perffarm user add alice --admin --password-stdin --database ./farm.db
    """
    import sys

    from perffarm.console import UsageError, console

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password is not None and len(password) < 8:
        raise UsageError("the password needs at least 8 characters")
    made = _user_call(
        database,
        server_url,
        token,
        lambda conn, users: (
            users.create(conn, name, display_name=display_name, password=password, is_admin=admin)
            .admin_view()
            .model_dump(mode="json")
        ),
        (
            "POST",
            "/users",
            {"name": name, "display_name": display_name, "password": password, "is_admin": admin},
        ),
    )
    console.print(f"added user {made['name']}{' (admin)' if made['is_admin'] else ''}")


@app.command("list")
def user_list(
    as_json: bool = typer.Option(False, "--json", help="Print the users as JSON."),
    database: str | None = _USER_DB,
    server_url: str | None = _USER_SERVER,
    token: str | None = _USER_TOKEN,
) -> None:
    """List users (never their emails).

    Example: perffarm user list --json --database ./farm.db
    """
    from perffarm.console import console, print_json

    items = _user_call(
        database,
        server_url,
        token,
        lambda conn, users: {
            "items": [u.admin_view().model_dump(mode="json") for u in users.listing(conn)]
        },
        ("GET", "/users", None),
    )["items"]
    if as_json:
        print_json(items)
        return
    for u in items:
        state = "disabled" if u["disabled"] else ("waiting" if not u["approved"] else "active")
        console.print(
            f"{u['name']:<20} {u['display_name']:<30} {u['provider']:<10} {state}"
            f"{'  admin' if u['is_admin'] else ''}"
        )


def _disable_here(conn: "sa.Connection", users: "ModuleType", name: str) -> dict[str, Any]:
    from perffarm.server.core.timeutil import now
    from perffarm.server.store import lifecycle
    from perffarm.server.store.transactions import writing

    view: dict[str, Any] = (
        users.set_flags(conn, name, disabled=True).admin_view().model_dump(mode="json")
    )
    with writing(conn):
        lifecycle.record(
            conn, actor="perffarm user disable", action="disable user", target=name, at=now()
        )
    return view


@app.command("disable")
def user_disable(
    name: str = typer.Argument(..., help="The user to disable."),
    database: str | None = _USER_DB,
    server_url: str | None = _USER_SERVER,
    token: str | None = _USER_TOKEN,
) -> None:
    """Disable a user: sessions end, tokens and their machines' secrets are refused.

    Example: perffarm user disable bob --database ./farm.db
    """
    from perffarm.console import console

    _user_call(
        database,
        server_url,
        token,
        lambda conn, users: _disable_here(conn, users, name),
        ("POST", f"/users/{name}/disable", None),
    )
    console.print(f"disabled user {name}")


@app.command("approve")
def user_approve(
    name: str = typer.Argument(..., help="The user to approve."),
    database: str | None = _USER_DB,
    server_url: str | None = _USER_SERVER,
    token: str | None = _USER_TOKEN,
) -> None:
    """Approve a user who signed in through a provider (with --user-approval admin).

    Example: perffarm user approve bob --database ./farm.db
    """
    from perffarm.console import console

    _user_call(
        database,
        server_url,
        token,
        lambda conn, users: (
            users.set_flags(conn, name, approved=True).admin_view().model_dump(mode="json")
        ),
        ("POST", f"/users/{name}/approve", None),
    )
    console.print(f"approved user {name}")


def _delete_here(conn: "sa.Connection", users: "ModuleType", name: str) -> dict[str, Any]:
    from perffarm.server.core.timeutil import now
    from perffarm.server.store import lifecycle
    from perffarm.server.store.transactions import writing

    user = users.get(conn, name=name)
    view: dict[str, Any] = user.admin_view().model_dump(mode="json")
    with writing(conn):
        lifecycle.delete_user(conn, user.id)
        lifecycle.record(
            conn, actor="perffarm user delete", action="delete user", target=name, at=now()
        )
    return view


@app.command("delete")
def user_delete(
    name: str = typer.Argument(..., help="The user to delete."),
    database: str | None = _USER_DB,
    server_url: str | None = _USER_SERVER,
    token: str | None = _USER_TOKEN,
) -> None:
    """Delete a user: their tokens, sessions and grants go; their machines and runs stay,
    managed by admins. Recorded in the audit trail (perffarm db audit).

    Example: perffarm user delete bob --database ./farm.db
    """
    from perffarm.console import console

    _user_call(
        database,
        server_url,
        token,
        lambda conn, users: _delete_here(conn, users, name),
        ("DELETE", f"/users/{name}", None),
    )
    console.print(f"deleted user {name}", markup=False)
