"""Backups, restores and copies of the results database, consistent while servers write.

A SQLite database is backed up with ``VACUUM INTO`` (one read transaction: writers go on in
WAL mode, and what is still in the WAL is included, which a plain file copy loses), a
PostgreSQL database with ``pg_dump`` in its custom format (one snapshot). A backup is
restored into a database of the same kind; moving between kinds is ``copy``, which reads
every table through SQLAlchemy and writes it into a new database in one transaction.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from perffarm.server.store import migrate
from perffarm.server.store.engine import make_engine
from perffarm.server.store.tables import metadata

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
_COPY_BATCH = 2_000


class BackupError(Exception):
    """A backup, restore or copy that cannot be done; the message says what to do."""


@dataclass(frozen=True)
class BackupFile:
    path: Path
    kind: str  # "sqlite" or "postgresql"
    revision: str | None
    size: int


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url}: not a SQLite database file")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A URL pg_dump understands, and the environment carrying its password (kept out of
    the command line, where other users of the machine could read it)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client programs "
            "(Debian: apt install postgresql-client) in a version at least the server's"
        )
    return found


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise BackupError(f"{Path(command[0]).name} failed: {reason}")
    return done.stdout


def _private_temporary(destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    os.close(handle)
    os.chmod(name, 0o600)  # a backup holds hashed secrets and every result: owner only
    return Path(name)


def backup(url: str, destination: Path) -> BackupFile:
    """Write a consistent backup of the database at ``url`` to ``destination``, which must
    not exist yet; the file appears only once it is whole."""
    if destination.exists():
        raise BackupError(f"{destination} already exists: choose a new name or remove it")
    partial = _private_temporary(destination)
    try:
        if make_url(url).get_backend_name() == "sqlite":
            source = _sqlite_path(url)
            if not source.is_file():
                raise BackupError(f"{source}: no such database (check --database)")
            partial.unlink()  # VACUUM INTO wants to create the file itself
            with sqlite3.connect(source, timeout=30) as connection:
                connection.execute("VACUUM INTO ?", (str(partial),))
            connection.close()
            os.chmod(partial, 0o600)
        else:
            libpq, env = _libpq(url)
            _run(
                [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}", libpq],
                env,
            )
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return inspect_backup(destination)


def inspect_backup(path: Path) -> BackupFile:
    """What a backup file is: its kind and the schema revision it holds."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"{path}: {exc.strerror}") from None
    if head.startswith(SQLITE_MAGIC):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            try:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            except sqlite3.DatabaseError:
                row = None
        connection.close()
        return BackupFile(path, "sqlite", row[0] if row else None, path.stat().st_size)
    if head.startswith(PG_DUMP_MAGIC):
        data = _run(
            [_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(path)],
            dict(os.environ),
        )
        revision = _revision_in_dump(data)
        return BackupFile(path, "postgresql", revision, path.stat().st_size)
    raise BackupError(
        f"{path}: not a perffarm backup (neither a SQLite database nor a pg_dump archive)"
    )


def _revision_in_dump(sql: str) -> str | None:
    lines = sql.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and index + 1 < len(lines):
            value = lines[index + 1].strip()
            return None if value == "\\." else value
    return None


def _check_known(revision: str | None, path: Path) -> None:
    if revision is None:
        raise BackupError(f"{path}: holds no perffarm schema (no alembic_version)")
    if revision not in migrate.known_revisions():
        raise BackupError(
            f"{path}: schema revision {revision} is newer than this perffarm knows: "
            "restore it with the perffarm that made it, or upgrade perffarm"
        )


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows of every perffarm table present in the database."""
    present = set(sa.inspect(engine).get_table_names())
    counts = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in present:
                counts[table.name] = connection.execute(
                    sa.select(sa.func.count()).select_from(table)
                ).scalar_one()
    return counts


def _holds_data(engine: Engine) -> int:
    """How many rows the database's perffarm tables hold (0: empty or new)."""
    return sum(row_counts(engine).values()) if _has_schema(engine) else 0


def _has_schema(engine: Engine) -> bool:
    return sa.inspect(engine).has_table("alembic_version")


def restore(url: str, source: Path, *, force: bool) -> tuple[BackupFile, str]:
    """Restore ``source`` into the database at ``url``; returns the backup and the schema
    revision the database is at afterwards (a backup of an older schema is upgraded)."""
    found = inspect_backup(source)
    _check_known(found.revision, source)
    kind = make_url(url).get_backend_name()
    if kind != found.kind:
        raise BackupError(
            f"{source} is a {found.kind} backup and the target is {kind}: to move between "
            f"kinds restore it into a {found.kind} database and use "
            "perffarm db copy --from ... --to ..."
        )
    engine = make_engine(url, pool_size=1)
    try:
        occupied = _holds_data(engine)
        if occupied and not force:
            raise BackupError(
                f"the target database holds {occupied} rows: stop its servers and add "
                "--force to replace them with the backup"
            )
        if kind == "sqlite":
            engine.dispose()
            with (
                sqlite3.connect(f"file:{source}?mode=ro", uri=True) as from_backup,
                sqlite3.connect(_sqlite_path(url), timeout=30) as into,
            ):
                # One write transaction on the target: readers see the old or the new.
                from_backup.backup(into)
            from_backup.close()
            into.close()
        else:
            libpq, env = _libpq(url)
            command = [_tool("pg_restore"), "--no-owner", "--single-transaction"]
            if occupied or _has_schema(engine):
                command += ["--clean", "--if-exists"]
            engine.dispose()
            _run([*command, f"--dbname={libpq}", str(source)], env)
        engine = make_engine(url, pool_size=1)
        _, after = migrate.upgrade(engine)
    finally:
        engine.dispose()
    return found, after


def copy(
    source_url: str,
    target_url: str,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Copy every row of the database at ``source_url`` into the empty database at
    ``target_url`` (any kinds), in one transaction on the target; returns rows per table.
    The source is only read and must be at this perffarm's schema revision."""
    source = make_engine(source_url, pool_size=1)
    target = make_engine(target_url, pool_size=1)
    try:
        revision = migrate.current_revision(source)
        if revision is None:
            raise BackupError("the source holds no perffarm database (check --from)")
        if revision != migrate.head_revision():
            raise BackupError(
                f"the source is at schema revision {revision} and this perffarm at "
                f"{migrate.head_revision()}: run perffarm db upgrade on the source first"
            )
        # Rows the migrations themselves write (the server's own settings) do not make a
        # database occupied; anything a server stored does.
        stored = {n: c for n, c in row_counts(target).items() if n != "server_settings"}
        if _has_schema(target) and any(stored.values()):
            raise BackupError("the target database already holds data: copy into a new, empty one")
        migrate.upgrade(target)
        copied: dict[str, int] = {}
        with source.connect() as reader, target.begin() as writer:
            for table in reversed(metadata.sorted_tables):
                writer.execute(table.delete())
            for table in metadata.sorted_tables:
                copied[table.name] = 0
                order = list(table.primary_key.columns) or list(table.columns)
                result = reader.execution_options(stream_results=True).execute(
                    sa.select(table).order_by(*order)
                )
                for rows in result.mappings().partitions(_COPY_BATCH):
                    writer.execute(table.insert(), [dict(row) for row in rows])
                    copied[table.name] += len(rows)
                    if progress is not None:
                        progress(table.name, len(rows))
            if target.dialect.name == "postgresql":
                _restart_sequences(writer)
        return copied
    finally:
        source.dispose()
        target.dispose()


def _restart_sequences(connection: sa.Connection) -> None:
    """Rows copied with their ids leave PostgreSQL's id sequences behind; move them on."""
    for table in metadata.sorted_tables:
        column = table.autoincrement_column
        if column is not None:
            connection.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence(:table, :column),"
                    f" COALESCE((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"
                ),
                {"table": table.name, "column": column.name},
            )
