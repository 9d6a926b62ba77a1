"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 11:02:17.363861
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "machines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fingerprint", sa.String(length=200), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("metadata_run_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machines")),
        sa.UniqueConstraint("name", name=op.f("uq_machines_name")),
    )
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_machines_owner"), ["owner"], unique=False)

    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("benchmark", sa.String(length=500), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("branch", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_series_key_hash")),
    )
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.create_index("ix_series_lookup", ["project", "benchmark", "metric"], unique=False)

    op.create_table(
        "server_settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_server_settings")),
    )
    op.create_table(
        "machine_fingerprint_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("old", sa.String(length=200), nullable=True),
        sa.Column("new", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["machine_id"],
            ["machines.id"],
            name=op.f("fk_machine_fingerprint_changes_machine_id_machines"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_fingerprint_changes")),
    )
    with op.batch_alter_table("machine_fingerprint_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_machine_fingerprint_changes_machine_id"), ["machine_id"], unique=False
        )

    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("branch", sa.String(length=200), nullable=True),
        sa.Column("commit", sa.String(length=100), nullable=True),
        sa.Column("commit_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fingerprint", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("probe", sa.Text(), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_runs_machine_id_machines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_branch", ["branch"], unique=False)
        batch_op.create_index("ix_runs_commit", ["commit"], unique=False)
        batch_op.create_index("ix_runs_machine_started", ["machine_id", "started_at"], unique=False)
        batch_op.create_index("ix_runs_project_started", ["project", "started_at"], unique=False)
        batch_op.create_index("ix_runs_started", ["started_at", "id"], unique=False)
        batch_op.create_index("ix_runs_tag", ["tag"], unique=False)

    op.create_table(
        "results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("commit_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("benchmark", sa.String(length=500), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=50), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("median", sa.Float(), nullable=True),
        sa.Column("stdev", sa.Float(), nullable=True),
        sa.Column("min", sa.Float(), nullable=True),
        sa.Column("max", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("samples", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_results_machine_id_machines")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_results_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["series_id"], ["series.id"], name=op.f("fk_results_series_id_series")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),
    )
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.create_index("ix_results_machine", ["machine_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_results_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_results_series", ["series_id", "commit_time", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_index("ix_results_series")
        batch_op.drop_index(batch_op.f("ix_results_run_id"))
        batch_op.drop_index("ix_results_machine")

    op.drop_table("results")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_tag")
        batch_op.drop_index("ix_runs_started")
        batch_op.drop_index("ix_runs_project_started")
        batch_op.drop_index("ix_runs_machine_started")
        batch_op.drop_index("ix_runs_commit")
        batch_op.drop_index("ix_runs_branch")

    op.drop_table("runs")
    with op.batch_alter_table("machine_fingerprint_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_machine_fingerprint_changes_machine_id"))

    op.drop_table("machine_fingerprint_changes")
    op.drop_table("server_settings")
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.drop_index("ix_series_lookup")

    op.drop_table("series")
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_machines_owner"))

    op.drop_table("machines")
