"""UTC times in and out of the database (SQLite keeps them without a zone)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def now() -> datetime:
    return datetime.now(UTC)


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
@overload
def utc(value: datetime | None) -> datetime | None: ...
def utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime, whatever the database gave back."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_db(value: datetime | None) -> datetime | None:
    """A time as stored: in UTC, so that SQLite (which drops the zone) compares it in order."""
    return utc(value)


def iso(value: datetime | None) -> str | None:
    """A stored time as the API writes it (as pydantic does: ``2026-01-01T00:00:00Z``)."""
    aware = utc(value)
    return aware.isoformat().replace("+00:00", "Z") if aware else None
