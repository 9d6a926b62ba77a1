"""change points and alerts (issue 6)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("branch", sa.String(length=200), nullable=False),
        sa.Column("commit_before", sa.String(length=100), nullable=False),
        sa.Column("commit_after", sa.String(length=100), nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_groups")),
        sa.UniqueConstraint(
            "project",
            "branch",
            "commit_before",
            "commit_after",
            name=op.f("uq_alert_groups_project_branch_commit_before_commit_after"),
        ),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("benchmark", sa.String(length=500), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("branch", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=50), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("magnitude", sa.Float(), nullable=False),
        sa.Column("magnitude_low", sa.Float(), nullable=True),
        sa.Column("magnitude_high", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("mean_before", sa.Float(), nullable=False),
        sa.Column("mean_after", sa.Float(), nullable=False),
        sa.Column("n_before", sa.Integer(), nullable=False),
        sa.Column("n_after", sa.Integer(), nullable=False),
        sa.Column("noise_cv", sa.Float(), nullable=True),
        sa.Column("noise_run_to_run", sa.Float(), nullable=True),
        sa.Column("noise_level", sa.String(length=20), nullable=False),
        sa.Column("run_before", sa.String(length=36), nullable=False),
        sa.Column("run_after", sa.String(length=36), nullable=False),
        sa.Column("commit_before", sa.String(length=100), nullable=False),
        sa.Column("commit_after", sa.String(length=100), nullable=False),
        sa.Column("commit_time_before", _Time, nullable=True),
        sa.Column("commit_time_after", _Time, nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_by", sa.String(length=200), nullable=True),
        sa.Column("state_at", _Time, nullable=True),
        sa.Column("state_note", sa.Text(), nullable=True),
        sa.Column("created_at", _Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["alert_groups.id"], name=op.f("fk_alerts_group_id_alert_groups")
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_alerts_machine_id_machines")
        ),
        sa.ForeignKeyConstraint(["run_after"], ["runs.id"], name=op.f("fk_alerts_run_after_runs")),
        sa.ForeignKeyConstraint(
            ["series_id"], ["series.id"], name=op.f("fk_alerts_series_id_series")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "series_id",
            "machine_id",
            "run_after",
            name=op.f("uq_alerts_series_id_machine_id_run_after"),
        ),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_group_id"), ["group_id"], unique=False)
        batch_op.create_index("ix_alerts_project_state", ["project", "state", "id"], unique=False)

    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("at", _Time, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_events_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_events_alert_id"), ["alert_id"], unique=False)

    op.create_table(
        "series_breaks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_series_breaks_machine_id_machines")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_series_breaks_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["series_id"], ["series.id"], name=op.f("fk_series_breaks_series_id_series")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_breaks")),
        sa.UniqueConstraint(
            "series_id",
            "machine_id",
            "run_id",
            name=op.f("uq_series_breaks_series_id_machine_id_run_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("series_breaks")
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_events_alert_id"))
    op.drop_table("alert_events")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_project_state")
        batch_op.drop_index(batch_op.f("ix_alerts_group_id"))
    op.drop_table("alerts")
    op.drop_table("alert_groups")
