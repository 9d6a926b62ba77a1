"""Rate-limit events kept in the database, as a storage of the ``limits`` library: every
server process sharing the database shares the limits (an attacker gains nothing from
reaching another worker), and a restart forgets nothing.

Only the moving window is supported (the strategy the server uses); an event is a row
``(key, at)``, and old rows are deleted as keys are used.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from limits.storage import MovingWindowSupport, Storage
from sqlalchemy.engine import Engine

from perffarm.server.store import tables as t

_events = t.rate_events


class DatabaseStorage(Storage, MovingWindowSupport):
    STORAGE_SCHEME = ["perffarm-database"]

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    @property
    def base_exceptions(self) -> type[Exception]:
        return sa.exc.SQLAlchemyError

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        moment = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                _events.delete().where(_events.c.key == key, _events.c.at < moment - expiry)
            )
            taken = conn.execute(
                sa.select(sa.func.count()).where(_events.c.key == key)
            ).scalar_one()
            if taken + amount > limit:
                return False
            conn.execute(_events.insert(), [{"key": key, "at": moment}] * amount)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        moment = time.time()
        with self.engine.connect() as conn:
            oldest, count = conn.execute(
                sa.select(sa.func.min(_events.c.at), sa.func.count()).where(
                    _events.c.key == key, _events.c.at >= moment - expiry
                )
            ).one()
        return (float(oldest) if oldest is not None else moment), int(count)

    # The fixed-window interface of ``Storage``, which the moving window does not use.

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("perffarm's rate limits use the moving window")

    def get(self, key: str) -> int:
        return self.get_moving_window(key, 0, 3600)[1]

    def get_expiry(self, key: str) -> float:
        return time.time()

    def check(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(sa.select(1))
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return int(conn.execute(_events.delete()).rowcount)

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(_events.delete().where(_events.c.key == key))
