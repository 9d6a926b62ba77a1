"""`perffarm db upgrade|reset-admin-token`: the results server's database."""

import typer

from perffarm.commands._serving import need_server_extra, open_and_migrate
from perffarm.commands._shared import DATABASE_HELP, group

app = group(
    "db",
    "The results server's database.\n\nExample: perffarm db upgrade --database ./farm.db",
)


@app.command("upgrade")
def db_upgrade(
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=DATABASE_HELP
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the revisions as JSON."),
) -> None:
    """Bring the database's schema up to date (the server does this on start, too).

    Example: perffarm db upgrade --database postgresql://perffarm@db.example.org/farm
    """
    from perffarm.console import console, print_json

    need_server_extra()
    engine, before, after = open_and_migrate(database)
    engine.dispose()
    if as_json:
        print_json({"before": before, "after": after})
    elif before == after:
        console.print(f"the database is up to date (schema {after})")
    else:
        console.print(f"upgraded the database: schema {before or 'empty'} -> {after}")


@app.command("reset-admin-token")
def db_reset_admin_token(
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=DATABASE_HELP
    ),
) -> None:
    """Make a new admin token (printed once) and forget the old one; restart the server after.

    Example: perffarm db reset-admin-token --database ./farm.db
    """
    need_server_extra()
    from perffarm.console import console, err_console
    from perffarm.server.store.server_settings import reset_admin_token

    engine, _, _ = open_and_migrate(database)
    token = reset_admin_token(engine)
    engine.dispose()
    err_console.print("new admin token (shown only this once):", style="bold")
    console.print(token)
