"""Migrations: the same Alembic scripts on SQLite and PostgreSQL; a newer database is refused."""

from __future__ import annotations

import sqlalchemy as sa

from perffarm.commands import main
from perffarm.server.settings import database_url
from perffarm.server.store import migrate
from perffarm.server.store.engine import make_engine
from perffarm.server.store.tables import metadata


def test_upgrade_creates_every_table_and_is_idempotent(database: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["db", "upgrade", "--database", database]) == 0
    assert "schema empty -> " in capsys.readouterr().out
    assert main(["db", "upgrade", "--database", database, "--json"]) == 0
    head = migrate.head_revision()
    assert f'"before": "{head}"' in capsys.readouterr().out

    engine = make_engine(database_url(database))
    try:
        inspector = sa.inspect(engine)
        assert set(metadata.tables) <= set(inspector.get_table_names())
        indexes = {i["name"] for i in inspector.get_indexes("results")}
        assert "ix_results_series" in indexes
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_a_database_from_a_newer_perffarm_is_refused_in_one_line(database: str, capsys) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(database_url(database))
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()

    code = main(["db", "upgrade", "--database", database])

    err = capsys.readouterr().err
    assert code == 1
    assert "9999_future" in err and "upgrade perffarm" in err
    assert "Traceback" not in err


def test_unreachable_database_is_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["db", "upgrade", "--database", "postgresql://nobody@127.0.0.1:1/none"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot open the database" in err and "Traceback" not in err


def test_database_url_forms() -> None:
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("/tmp/farm.db") == "sqlite:////tmp/farm.db"


def test_the_migrations_build_the_tables_the_code_declares(database: str) -> None:
    """Every table, column, index and key of store/tables.py, made by the migrations."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(database_url(database))
    migrate.upgrade(engine)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    # The series index holds extra columns (INCLUDE on PostgreSQL, key columns on SQLite):
    # written by its migration per dialect, declared by its key alone.
    left = [d for d in differences if "ix_results_series" not in repr(d)]
    assert left == []
