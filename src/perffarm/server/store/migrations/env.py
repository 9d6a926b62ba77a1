"""Alembic environment: always handed a live connection by perffarm.server.db.migrate."""

from __future__ import annotations

from alembic import context

from perffarm.server.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `perffarm db upgrade --database ...`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds tables when needed.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
