"""Fixtures for users, tokens and sign-in: a real app over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.server.core.principal import User
from perffarm.server.core.timeutil import now, to_db
from perffarm.server.store import tables as t
from perffarm.server.store import tokens, users
from perffarm.server.store.transactions import writing
from tests.server.conftest import (
    database,  # noqa: F401 - the parametrized fixture
    make_settings,
)
from tests.server.support import ADMIN

PASSWORD = "correct horse battery"


@dataclass
class Farm:
    client: TestClient
    engine: sa.Engine
    alice: User
    bob: User
    root: User

    def token(self, user: User, scope: str = "upload", lifetime=timedelta(days=1)) -> str:  # type: ignore[no-untyped-def]
        with self.engine.connect() as conn:
            _, secret = tokens.issue(
                conn,
                user.id,
                kind="personal",
                scopes=tokens.parse_scopes(scope),
                lifetime=lifetime,
            )
        return secret

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def revoked_token(self, user: User) -> str:
        secret = self.token(user)
        with self.engine.connect() as conn:
            info = tokens.resolve(conn, secret, kinds=("personal",))
            tokens.revoke(conn, info.id, user_id=user.id)
        return secret

    def expired_token(self, user: User) -> str:
        secret = self.token(user)
        with self.engine.connect() as conn, writing(conn):
            conn.execute(
                t.tokens.update()
                .where(
                    t.tokens.c.token_hash
                    == __import__("hashlib").sha256(secret.encode()).hexdigest()
                )
                .values(expires_at=to_db(now() - timedelta(seconds=1)))
            )
        return secret


def make_farm(url: str, **overrides) -> Iterator[Farm]:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(url, **overrides))
    engine = app.state.engine
    with engine.connect() as conn:
        alice = users.create(
            conn, "alice", display_name="Alice A.", email="alice@example.org", password=PASSWORD
        )
        bob = users.create(
            conn, "bob", display_name="Bob B.", email="bob@example.org", password=PASSWORD
        )
        root = users.create(
            conn, "root", email="root@example.org", password=PASSWORD, is_admin=True
        )
    with TestClient(app) as client:
        yield Farm(client=client, engine=engine, alice=alice, bob=bob, root=root)


@pytest.fixture
def farm(database: str) -> Iterator[Farm]:  # noqa: F811
    yield from make_farm(database)


__all__ = ["ADMIN", "PASSWORD", "Farm", "make_farm"]
