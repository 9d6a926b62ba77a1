"""load-test datapoints in chunks: one row per batch instead of one per datapoint (issue 9)

``loadtest_chunks`` holds a batch's datapoints as one JSON array
``[{"peerId","timestamp","metrics"}, ...]`` (``codec`` 'json', or 'lz4'/'zlib' compressed),
named by (test, worker, incarnation, sequence), unique. The datapoints of
``loadtest_datapoints`` move into chunks of at most 5,000, in their order, as worker ''
and incarnation '0004'; the old table is dropped. The downgrade unpacks them again.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_CHUNK = 5000
_MIGRATED = "0004"

_datapoints = sa.table(
    "loadtest_datapoints",
    sa.column("id", sa.BigInteger()),
    sa.column("test_id", sa.String()),
    sa.column("peer_id", sa.String()),
    sa.column("timestamp", sa.BigInteger()),
    sa.column("metrics", sa.Text()),
)
_chunks = sa.table(
    "loadtest_chunks",
    sa.column("id", sa.BigInteger()),
    sa.column("test_id", sa.String()),
    sa.column("worker", sa.String()),
    sa.column("incarnation", sa.String()),
    sa.column("sequence", sa.BigInteger()),
    sa.column("first_timestamp", sa.BigInteger()),
    sa.column("last_timestamp", sa.BigInteger()),
    sa.column("count", sa.Integer()),
    sa.column("codec", sa.String()),
    sa.column("data", sa.LargeBinary()),
)


def upgrade() -> None:
    op.create_table(
        "loadtest_chunks",
        sa.Column("id", _ID, nullable=False),
        sa.Column("test_id", sa.String(length=200), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("incarnation", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("first_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("last_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("codec", sa.String(length=10), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["test_id"], ["loadtests.id"], name=op.f("fk_loadtest_chunks_test_id_loadtests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loadtest_chunks")),
        sa.UniqueConstraint(
            "test_id",
            "worker",
            "incarnation",
            "sequence",
            name=op.f("uq_loadtest_chunks_test_id_worker_incarnation_sequence"),
        ),
    )
    op.create_index("ix_loadtest_chunks_test", "loadtest_chunks", ["test_id", "id"], unique=False)
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        # Chunks arrive compressed (LZ4): PostgreSQL's own compression would only cost time.
        op.execute("ALTER TABLE loadtest_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    _pack(conn)
    op.drop_index("ix_loadtest_datapoints_test", table_name="loadtest_datapoints")
    op.drop_table("loadtest_datapoints")


def _pack(conn: sa.Connection) -> None:
    """Every datapoint row into chunks of at most _CHUNK, per test, in id order."""
    tests = conn.execute(sa.select(_datapoints.c.test_id).distinct()).scalars().all()
    for test_id in tests:
        after, sequence = None, 0
        while True:
            query = (
                sa.select(
                    _datapoints.c.id,
                    _datapoints.c.peer_id,
                    _datapoints.c.timestamp,
                    _datapoints.c.metrics,
                )
                .where(_datapoints.c.test_id == test_id)
                .order_by(_datapoints.c.id)
                .limit(_CHUNK)
            )
            if after is not None:
                query = query.where(_datapoints.c.id > after)
            rows = conn.execute(query).all()
            if not rows:
                break
            items = ",".join(
                f'{{"peerId":{json.dumps(peer)},"timestamp":{stamp},"metrics":{metrics}}}'
                for _, peer, stamp, metrics in rows
            )
            stamps = [r.timestamp for r in rows]
            conn.execute(
                _chunks.insert().values(
                    test_id=test_id,
                    worker="",
                    incarnation=_MIGRATED,
                    sequence=sequence,
                    first_timestamp=min(stamps),
                    last_timestamp=max(stamps),
                    count=len(rows),
                    codec="json",
                    data=f"[{items}]".encode(),
                )
            )
            after, sequence = rows[-1].id, sequence + 1


def _decode(codec: str, blob: bytes) -> bytes:
    blob = bytes(blob)
    if codec == "lz4":
        import lz4.block

        return lz4.block.decompress(blob)
    if codec == "zlib":
        import zlib

        return zlib.decompress(blob)
    return blob


def downgrade() -> None:
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
    conn = op.get_bind()
    chunks = conn.execute(
        sa.select(_chunks.c.test_id, _chunks.c.codec, _chunks.c.data).order_by(_chunks.c.id)
    )
    for test_id, codec, blob in chunks.all():
        points = json.loads(_decode(codec, blob))
        if points:
            conn.execute(
                _datapoints.insert(),
                [
                    {
                        "test_id": test_id,
                        "peer_id": p["peerId"],
                        "timestamp": p["timestamp"],
                        "metrics": json.dumps(p["metrics"], separators=(",", ":")),
                    }
                    for p in points
                ],
            )
    op.drop_index("ix_loadtest_chunks_test", table_name="loadtest_chunks")
    op.drop_table("loadtest_chunks")
