"""Keyset paging: opaque cursors that carry the last row's ordering values.

A listing answers ``limit`` items and, when there are more, the cursor of the next page;
it never reads the whole table. A cursor is base64url JSON of the values it resumes after,
checked for shape and type on the way back in, so a forged cursor is a clear 422.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from perffarm.server.core.errors import Invalid
from perffarm.server.core.timeutil import to_db

#: The most items any listing answers at once.
MAX_PAGE = 1000
_FOREIGN = "cursor: not a cursor this server gave out"


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid(_FOREIGN) from None
    if not isinstance(values, list) or len(values) != size:
        raise Invalid(_FOREIGN)
    return values


def cursor_int(value: Any, name: str = "cursor") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name}: not a cursor this server gave out")
    return value


def cursor_text(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(_FOREIGN)
    return value


def query_time(value: Any, name: str) -> datetime:
    """An ISO 8601 time from a query parameter or cursor, as stored; Invalid otherwise."""
    try:
        moment = to_db(datetime.fromisoformat(str(value)))
    except (ValueError, OverflowError):
        raise Invalid(f"{name}: not an ISO 8601 time in range") from None
    assert moment is not None
    return moment


def page_of(
    rows: Sequence[Any], limit: int, last_key: Callable[[Any], Sequence[Any]]
) -> tuple[list[Any], str | None]:
    """The first ``limit`` of ``rows`` (read with ``limit + 1``) and the next cursor.

    ``last_key(row)`` gives the ordering values of a row, the ones the next page resumes
    after.
    """
    if len(rows) > limit:
        return list(rows[:limit]), encode_cursor(list(last_key(rows[limit - 1])))
    return list(rows), None
