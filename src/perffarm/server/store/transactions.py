"""Short committed writes on a connection that may have read before."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def writing(conn: sa.Connection) -> Iterator[None]:
    """One committed transaction on a request's connection, whatever it read before.

    Reads begin a transaction implicitly (SQLAlchemy 2 autobegin); ending that read-only
    transaction first lets every write here be its own short, committed transaction.
    """
    if conn.in_transaction():
        conn.commit()
    with conn.begin():
        yield
