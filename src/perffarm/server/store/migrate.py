"""Running the Alembic migrations shipped inside the package, without an alembic.ini."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseTooNew(Exception):
    """The database was migrated by a newer perffarm than this one."""


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Every schema revision this perffarm's migrations know."""
    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_not_newer(engine: Engine) -> str | None:
    """The database's revision; raises DatabaseTooNew for a revision this code lacks."""
    current = current_revision(engine)
    if current is None:
        return None
    scripts = ScriptDirectory.from_config(_config())
    try:
        scripts.get_revision(current)
    except Exception as exc:  # alembic raises several kinds for an unknown revision
        raise DatabaseTooNew(
            f"the database is at schema revision {current}, which this perffarm does not "
            "know: it was upgraded by a newer perffarm; upgrade perffarm to use it"
        ) from exc
    return current


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest schema; returns (revision before, revision after)."""
    before = check_not_newer(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Two server processes starting at once on an empty database must not both
            # create the tables: the second waits here, then finds nothing to do.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7316002)"))
        command.upgrade(_config(connection), "head")
    return before, head_revision()
