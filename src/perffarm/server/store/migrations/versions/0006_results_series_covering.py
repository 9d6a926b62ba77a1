"""results: the series index covers what a timeline reads (issue 5)

A timeline reads, per point of a series: id, commit time, machine, median/mean and the
spread (CI, else min-max). With those in the index, reading a 100,000-point line is one
index-only range scan instead of 100,000 lookups of the (wide) result rows.

The index keeps its name and its key columns (series_id, commit_time, id), so every query
that used it still does. PostgreSQL holds the extra columns as INCLUDE (not part of the
key); SQLite has no INCLUDE, so they follow the key there.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEY = ["series_id", "commit_time", "id"]
COVERED = ["machine_id", "median", "mean", "ci_low", "ci_high", "min", "max"]


def upgrade() -> None:
    op.drop_index("ix_results_series", table_name="results")
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_results_series", "results", KEY, postgresql_include=COVERED)
    else:
        op.create_index("ix_results_series", "results", KEY + COVERED)


def downgrade() -> None:
    op.drop_index("ix_results_series", table_name="results")
    op.create_index("ix_results_series", "results", KEY)
