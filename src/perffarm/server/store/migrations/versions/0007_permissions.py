"""permissions: machine grants, token lineage, load-test creators and tokens, shared rate
limits (issue 16)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    # The key of users' public ids (a keyed hash of the row): random, this server's own.
    settings = sa.table("server_settings", sa.column("key", sa.String), sa.column("value"))
    op.bulk_insert(settings, [{"key": "user_id_key", "value": secrets.token_urlsafe(32)}])
    op.create_table(
        "machine_grants",
        sa.Column("machine_id", sa.Integer, sa.ForeignKey("machines.id"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.Column("granted_at", Time, nullable=False),
    )
    op.create_table(
        "rate_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_rate_events_key_at", "rate_events", ["key", "at"])
    op.create_table(
        "loadtest_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("test_id", sa.String(200), sa.ForeignKey("loadtests.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )
    # Plain columns (no foreign key), added in place: on SQLite a foreign key would mean
    # copying the table, which its referencing rows forbid.
    op.add_column("tokens", sa.Column("parent_id", sa.String(40), nullable=True))
    op.create_index("ix_tokens_parent_id", "tokens", ["parent_id"])
    op.add_column("loadtests", sa.Column("created_by_user_id", sa.Integer, nullable=True))
    op.add_column("loadtests", sa.Column("created_by", sa.String(200), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM server_settings WHERE key = 'user_id_key'")
    op.drop_column("loadtests", "created_by")
    op.drop_column("loadtests", "created_by_user_id")
    op.drop_index("ix_tokens_parent_id", table_name="tokens")
    op.drop_column("tokens", "parent_id")
    op.drop_table("loadtest_tokens")
    op.drop_index("ix_rate_events_key_at", table_name="rate_events")
    op.drop_table("rate_events")
    op.drop_table("machine_grants")
