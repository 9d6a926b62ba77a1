"""The admin token: generated once when none is given, kept only as a hash."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.server.core.secrets import hash_secret
from perffarm.server.settings import Settings, database_url
from perffarm.server.store import migrate
from perffarm.server.store import tables as t
from perffarm.server.store.engine import make_engine
from perffarm.server.store.server_settings import ensure_admin_token, reset_admin_token


def test_generated_admin_token_is_shown_once_stored_hashed_and_works(database: str) -> None:
    engine = make_engine(database_url(database))
    migrate.upgrade(engine)
    first_hash, token = ensure_admin_token(engine, None)
    second_hash, again = ensure_admin_token(engine, None)
    with engine.connect() as conn:
        stored = (
            conn.execute(
                sa.select(t.server_settings.c.value).where(
                    t.server_settings.c.key == "admin_token_sha256"
                )
            )
            .scalars()
            .all()
        )
    assert token and again is None
    assert first_hash == second_hash == hash_secret(token) and stored == [first_hash]

    with TestClient(create_app(Settings(database=database))) as client:
        listing = client.get("/api/v1/machines", headers={"Authorization": f"Bearer {token}"})
        wrong = client.get("/api/v1/machines", headers={"Authorization": "Bearer nope"})
    assert listing.status_code == 200 and wrong.status_code == 401

    new = reset_admin_token(engine)
    assert ensure_admin_token(engine, None) == (hash_secret(new), None)
    engine.dispose()
