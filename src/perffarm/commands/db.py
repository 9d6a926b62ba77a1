"""`perffarm db upgrade|backup|restore|copy|usage|prune|audit|reset-admin-token`: the results
server's database, used directly (no server needed)."""

from pathlib import Path
from typing import Any

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
    err_console.print("new admin token (shown only this once):", style="bold")
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


KEEP_SAMPLES_HELP = "Keep raw samples and attachments this long: 90d, 12w, 1y or forever."
KEEP_DATAPOINTS_HELP = "Keep load-test datapoints this long after a test finished (90d, forever)."


def _retention(database: str, keep_samples: "str | None", keep_datapoints: "str | None") -> Any:
    """The Retention of a database, with the policy given or the server's environment's."""
    from perffarm.console import UsageError
    from perffarm.model.lifecycle import RetentionPolicy, format_retention, parse_retention
    from perffarm.server.services.lifecycle import Retention
    from perffarm.server.settings import Settings

    try:
        defaults = Settings().retention
        policy = RetentionPolicy(
            keep_samples=format_retention(parse_retention(keep_samples))
            if keep_samples is not None
            else defaults.keep_samples,
            keep_datapoints=format_retention(parse_retention(keep_datapoints))
            if keep_datapoints is not None
            else defaults.keep_datapoints,
        )
    except ValueError as exc:
        errors = getattr(exc, "errors", None)  # pydantic's, from a PERFFARM_KEEP_* variable
        message = errors()[0]["msg"].removeprefix("Value error, ") if errors else str(exc)
        raise UsageError(f"retention: {message}") from None
    engine, _, _ = open_and_migrate(database)
    return Retention(engine, policy)


def _print_report(report: Any) -> None:
    from rich.table import Table

    from perffarm.console import console

    verb = "would remove" if report.dry_run else "removed"
    table = Table("what", verb, title=f"prune ({'dry run' if report.dry_run else 'done'})")
    for name, value in report.model_dump().items():
        if name != "dry_run":
            table.add_row(name.replace("_", " "), f"{value:,}")
    console.print(table)


@app.command("usage")
def db_usage(
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=DATABASE_HELP
    ),
    keep_samples: "str | None" = typer.Option(None, "--keep-samples", help=KEEP_SAMPLES_HELP),
    keep_datapoints: "str | None" = typer.Option(
        None, "--keep-datapoints", help=KEEP_DATAPOINTS_HELP
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """What the database holds (rows and bytes per table, project and machine), and what a
    retention policy would remove now.

    Example: perffarm db usage --database ./farm.db --keep-samples 90d
    """
    need_server_extra()
    from rich.table import Table
    from rich.text import Text

    from perffarm.console import console, print_json

    retention = _retention(database, keep_samples, keep_datapoints)
    try:
        usage = retention.usage()
    finally:
        retention.engine.dispose()
    if as_json:
        print_json(usage.model_dump(mode="json"))
        return
    tables = Table("table", "rows", "bytes", title="tables")
    for row in sorted(usage.tables, key=lambda u: -(u.bytes or 0)):
        if row.rows or row.bytes:
            size = "?" if row.bytes is None else _size(row.bytes)
            tables.add_row(row.name, f"{row.rows:,}", size)
    console.print(tables)
    for title, groups in (("projects", usage.projects), ("machines", usage.machines)):
        table = Table(title[:-1], "runs", "results", "raw samples", title=title)
        for held in groups[:20]:
            table.add_row(
                Text(held.name), f"{held.runs:,}", f"{held.results:,}", f"{held.samples:,}"
            )
        console.print(table)
    if usage.database_bytes is not None:
        console.print(f"database: {_size(usage.database_bytes)}", markup=False)
    console.print(
        f"policy: samples {usage.policy.keep_samples}, datapoints {usage.policy.keep_datapoints}",
        markup=False,
    )
    _print_report(usage.would_remove)


@app.command("prune")
def db_prune(
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=DATABASE_HELP
    ),
    keep_samples: "str | None" = typer.Option(None, "--keep-samples", help=KEEP_SAMPLES_HELP),
    keep_datapoints: "str | None" = typer.Option(
        None, "--keep-datapoints", help=KEEP_DATAPOINTS_HELP
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; change nothing."),
    vacuum: bool = typer.Option(
        False,
        "--vacuum",
        help="Then give the space back (SQLite: rewrites the file and blocks writers while it "
        "runs; PostgreSQL: VACUUM ANALYZE).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Apply a retention policy now, in small batches, while servers go on (they apply
    theirs daily). Old runs keep their summaries and stay on every chart; runs marked keep,
    tagged runs and kept projects or branches are whole. Expired sign-in rows go, too.

    Example: perffarm db prune --database ./farm.db --keep-samples 90d --dry-run
    """
    need_server_extra()
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from perffarm.console import err_console, print_json

    retention = _retention(database, keep_samples, keep_datapoints)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("pruning {task.description}: {task.completed:,}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=as_json or dry_run,
    )
    tasks: dict[str, Any] = {}

    def advance(what: str, count: int) -> None:
        if what not in tasks:
            tasks[what] = progress.add_task(what, total=None)
        progress.advance(tasks[what], count)

    try:
        with progress:
            report = retention.prune(dry_run=dry_run, actor="perffarm db prune", progress=advance)
            if vacuum and not dry_run:
                from perffarm.server.store.lifecycle import vacuum as give_back

                advance("vacuum", 0)
                give_back(retention.engine)
    finally:
        retention.engine.dispose()
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        _print_report(report)


@app.command("audit")
def db_audit(
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=DATABASE_HELP
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many events, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Who deleted, retired, disabled or pruned what, and when (newest first).

    Example: perffarm db audit --database ./farm.db --limit 20
    """
    need_server_extra()
    from rich.table import Table
    from rich.text import Text

    from perffarm.console import console, print_json
    from perffarm.server.store.lifecycle import audit_events

    engine, _, _ = open_and_migrate(database)
    try:
        with engine.connect() as conn:
            events = audit_events(conn, limit=limit)
    finally:
        engine.dispose()
    if as_json:
        print_json([event.model_dump(mode="json") for event in events])
        return
    if not events:
        console.print("nothing deleted, retired or pruned yet")
        return
    table = Table("when", "who", "did", "what", "detail", title="audit")
    for event in events:
        table.add_row(
            event.at.strftime("%Y-%m-%d %H:%M"),
            Text(event.actor),
            event.action,
            Text(event.target),
            Text(event.detail),
        )
    console.print(table)
