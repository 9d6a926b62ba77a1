"""Device codes of the OAuth device grant (RFC 8628): created by a command line, approved
or denied by a signed-in person in the browser, spent once for tokens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from perffarm.server.core.errors import Unavailable
from perffarm.server.core.secrets import hash_secret
from perffarm.server.core.timeutil import now, to_db, utc
from perffarm.server.store import tables as t
from perffarm.server.store.transactions import writing

DEVICE_CODE_LIFETIME = timedelta(minutes=10)
# No vowels or look-alikes (RFC 8628 section 6.1): codes are typed by people and must not
# spell words.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
_d = t.device_codes


@dataclass(frozen=True)
class DeviceCode:
    id: int
    user_code: str
    client_id: str
    scopes: str
    status: str
    expires_at: datetime
    last_poll: datetime | None
    interval: int
    user_id: int | None

    @property
    def expired(self) -> bool:
        return self.expires_at <= now()


def _code(row: sa.Row) -> DeviceCode:
    return DeviceCode(
        id=row.id,
        user_code=row.user_code,
        client_id=row.client_id,
        scopes=row.scopes,
        status=row.status,
        expires_at=utc(row.expires_at),
        last_poll=utc(row.last_poll),
        interval=row.interval,
        user_id=row.user_id,
    )


def create(
    conn: sa.Connection, device_code: str, *, client_id: str, scopes: str, interval: int
) -> str:
    """Store a pending device code; answers its user code (unique among the stored ones).
    Codes past their expiry are deleted on the way: none can be used any more."""
    with writing(conn):
        conn.execute(_d.delete().where(_d.c.expires_at < to_db(now())))
    for _ in range(5):
        code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
        try:
            with writing(conn):
                conn.execute(
                    _d.insert().values(
                        device_code_hash=hash_secret(device_code),
                        user_code=code,
                        client_id=client_id[:200],
                        scopes=scopes,
                        status="pending",
                        created_at=to_db(now()),
                        expires_at=to_db(now() + DEVICE_CODE_LIFETIME),
                        interval=interval,
                    )
                )
            return code
        except sa.exc.IntegrityError:
            continue
    raise Unavailable("could not find a free user code: try again")


def by_device_code(conn: sa.Connection, device_code: str) -> DeviceCode | None:
    row = conn.execute(
        sa.select(_d).where(_d.c.device_code_hash == hash_secret(device_code))
    ).first()
    return _code(row) if row is not None else None


def by_user_code(conn: sa.Connection, user_code: str) -> DeviceCode | None:
    row = conn.execute(sa.select(_d).where(_d.c.user_code == user_code)).first()
    return _code(row) if row is not None else None


def note_poll(conn: sa.Connection, code_id: int, moment: datetime) -> None:
    with writing(conn):
        conn.execute(_d.update().where(_d.c.id == code_id).values(last_poll=to_db(moment)))


def spend(conn: sa.Connection, code_id: int) -> bool:
    """Mark an approved code used; False when it was not approved (or used already)."""
    with writing(conn):
        claimed = conn.execute(
            _d.update().where(_d.c.id == code_id, _d.c.status == "approved").values(status="used")
        ).rowcount
    return bool(claimed)


def decide(conn: sa.Connection, code_id: int, user_id: int, *, allow: bool) -> None:
    with writing(conn):
        conn.execute(
            _d.update()
            .where(_d.c.id == code_id, _d.c.status == "pending")
            .values(status="approved" if allow else "denied", user_id=user_id)
        )
