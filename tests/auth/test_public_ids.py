"""A user's public id is a keyed hash with the server's own key (issue 16, case 9): not
guessable from the row number, not the same on two servers, stable on one."""

from __future__ import annotations

import hashlib
from pathlib import Path

from perffarm.server.settings import database_url
from perffarm.server.store import migrate, users
from perffarm.server.store.engine import make_engine


def _first_user_id(path: Path) -> str:
    engine = make_engine(database_url(str(path)))
    migrate.upgrade(engine)
    try:
        with engine.connect() as conn:
            made = users.create(conn, "alice")
            again = users.get(conn, name="alice")
        assert made.public_id == again.public_id
        return made.public_id
    finally:
        engine.dispose()


def test_public_ids_are_keyed_per_server(tmp_path: Path) -> None:
    first = _first_user_id(tmp_path / "one.db")
    second = _first_user_id(tmp_path / "two.db")
    assert first.startswith("u-") and second.startswith("u-")
    assert first != second
    unkeyed = "u-" + hashlib.sha256(b"perffarm-user:1").hexdigest()[:12]
    assert unkeyed not in (first, second)
