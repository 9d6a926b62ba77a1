"""lifecycle: retention marks, summary-only runs, retired machines, deletions and the
audit trail (issue 18)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain columns added in place (see 0007: no table copies on SQLite).
    op.add_column("runs", sa.Column("keep", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("runs", sa.Column("samples_removed_at", Time, nullable=True))
    op.add_column("machines", sa.Column("retired_at", Time, nullable=True))
    op.create_table(
        "keep_marks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        # '' marks the whole project; otherwise one of its branches.
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.UniqueConstraint("project", "branch"),
    )
    op.create_table(
        "deleted_runs",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("machine_id", sa.Integer, nullable=False),
        sa.Column("deleted_at", Time, nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("at", Time, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("deleted_runs")
    op.drop_table("keep_marks")
    op.drop_column("machines", "retired_at")
    op.drop_column("runs", "samples_removed_at")
    op.drop_column("runs", "keep")
