"""`perffarm db upgrade|backup|restore|copy|reset-admin-token`: the results server's database."""

from pathlib import Path

import typer

from perffarm.commands._serving import need_server_extra, open_and_migrate
from perffarm.commands._shared import DATABASE_HELP, JSON_OPTION, group

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
    err_console.print("[bold]new admin token (shown only this once):[/]")
    console.print(token)


def _url(option: str, value: str) -> str:
    from perffarm.console import UsageError
    from perffarm.server.settings import database_url

    try:
        return database_url(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return str(size)


@app.command("backup")
def db_backup(
    destination: Path = typer.Argument(..., help="The backup file to write (must not exist)."),
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=DATABASE_HELP
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Back the database up, consistently, while servers go on writing to it.

    A SQLite database is copied with VACUUM INTO (what is still in its write-ahead log
    included, which a plain file copy misses); a PostgreSQL database with pg_dump's custom
    format. The file is private to you and appears only once whole.

    Example: perffarm db backup --database ./farm.db ./backups/farm-2026-12-07.db
    """
    need_server_extra()
    from perffarm.console import UserError, console, print_json
    from perffarm.server.store.backup import BackupError, backup

    url = _url("--database", database)
    try:
        made = backup(url, destination)
    except BackupError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(
            {
                "path": str(made.path),
                "kind": made.kind,
                "revision": made.revision,
                "bytes": made.size,
            }
        )
    else:
        console.print(
            f"backed up {made.kind} database (schema {made.revision}) to {made.path}"
            f" ({_size(made.size)})",
            markup=False,
        )


@app.command("restore")
def db_restore(
    source: Path = typer.Argument(..., help="A backup made by perffarm db backup."),
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=DATABASE_HELP
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a database that holds data (stop its servers first)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Restore a backup into a database of the same kind, then bring its schema up to date.

    Refuses a database that already holds data unless --force, and a backup whose schema
    is newer than this perffarm. The restore is one transaction: it happens whole or not.

    Example: perffarm db restore --database ./farm.db ./backups/farm-2026-12-07.db
    """
    need_server_extra()
    from perffarm.console import UserError, console, print_json
    from perffarm.server.store.backup import BackupError, restore

    url = _url("--database", database)
    if not source.is_file():
        raise UserError(f"{source}: no such backup file")
    try:
        found, after = restore(url, source, force=force)
    except BackupError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(
            {
                "backup": str(source),
                "kind": found.kind,
                "backup_revision": found.revision,
                "revision": after,
            }
        )
    else:
        upgraded = "" if found.revision == after else f", upgraded to schema {after}"
        console.print(
            f"restored {source} (schema {found.revision}){upgraded}; start the server on it",
            markup=False,
        )


@app.command("copy")
def db_copy(
    source: str = typer.Option(..., "--from", help="The database to read: " + DATABASE_HELP),
    target: str = typer.Option(..., "--to", help="A new, empty database: " + DATABASE_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Copy every row from one database into a new one, e.g. from SQLite to PostgreSQL.

    The source is only read (stop its servers first, or copy from a backup); the target is
    written in one transaction, so it holds all rows or none.

    Example: perffarm db copy --from ./farm.db --to postgresql://perffarm@db.example.org/farm
    """
    need_server_extra()
    import sqlalchemy as sa
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from perffarm.console import UserError, console, err_console, print_json
    from perffarm.server.store.backup import BackupError, copy, row_counts
    from perffarm.server.store.engine import make_engine

    source_url, target_url = _url("--from", source), _url("--to", target)
    probe = make_engine(source_url, pool_size=1)
    try:
        total = sum(row_counts(probe).values())
    except sa.exc.SQLAlchemyError as exc:
        raise UserError(f"--from: cannot read the database: {str(exc).splitlines()[0]}") from None
    finally:
        probe.dispose()
    progress = Progress(
        TextColumn("copying {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=as_json,
    )
    task = progress.add_task("", total=total or None)

    def advance(table: str, rows: int) -> None:
        progress.update(task, description=table, advance=rows)

    try:
        with progress:
            copied = copy(source_url, target_url, progress=advance)
    except BackupError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json({"tables": copied, "rows": sum(copied.values())})
        return
    table = Table("table", "rows", title="copied")
    for name, count in copied.items():
        if count:
            table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"{sum(copied.values()):,} rows copied; start the server on the new database")
