"""The visibility rule (``core.visibility``) as a WHERE clause on ``machines``."""

from __future__ import annotations

import sqlalchemy as sa


def visible(m: sa.Table, *, admin: bool, viewer: int | None) -> sa.ColumnElement[bool]:
    """The machines whose runs, results and alerts the caller may see."""
    if admin:
        return sa.true()
    if viewer is None:
        return m.c.approved.is_(True)
    return sa.or_(m.c.approved.is_(True), m.c.owner_user_id == viewer)
