"""load tests and their datapoints (issue 9)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "loadtests",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("started", sa.BigInteger(), nullable=True),
        sa.Column("finished", sa.BigInteger(), nullable=True),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("results", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("verdict", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loadtests")),
    )
    op.create_index("ix_loadtests_created", "loadtests", ["created"], unique=False)

    op.create_table(
        "loadtest_batches",
        sa.Column("id", _ID, nullable=False),
        sa.Column("test_id", sa.String(length=200), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("incarnation", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("datapoints", sa.Integer(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("health", sa.Text(), nullable=True),
        sa.Column("latency", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["test_id"], ["loadtests.id"], name=op.f("fk_loadtest_batches_test_id_loadtests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loadtest_batches")),
        sa.UniqueConstraint(
            "test_id",
            "worker",
            "incarnation",
            "sequence",
            name=op.f("uq_loadtest_batches_test_id_worker_incarnation_sequence"),
        ),
    )

    op.create_table(
        "loadtest_datapoints",
        sa.Column("id", _ID, nullable=False),
        sa.Column("test_id", sa.String(length=200), nullable=False),
        sa.Column("peer_id", sa.String(length=200), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["test_id"], ["loadtests.id"], name=op.f("fk_loadtest_datapoints_test_id_loadtests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loadtest_datapoints")),
    )
    op.create_index(
        "ix_loadtest_datapoints_test", "loadtest_datapoints", ["test_id", "id"], unique=False
    )

    op.create_table(
        "loadtest_topology",
        sa.Column("id", _ID, nullable=False),
        sa.Column("test_id", sa.String(length=200), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("topology", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["test_id"], ["loadtests.id"], name=op.f("fk_loadtest_topology_test_id_loadtests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loadtest_topology")),
    )
    op.create_index(
        "ix_loadtest_topology_test", "loadtest_topology", ["test_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_loadtest_topology_test", table_name="loadtest_topology")
    op.drop_table("loadtest_topology")
    op.drop_index("ix_loadtest_datapoints_test", table_name="loadtest_datapoints")
    op.drop_table("loadtest_datapoints")
    op.drop_table("loadtest_batches")
    op.drop_index("ix_loadtests_created", table_name="loadtests")
    op.drop_table("loadtests")
