"""Server test fixtures: every storage test runs against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.server.settings import Settings
from tests.server.support import ADMIN


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: a SQLite file path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "farm.db")
    return request.getfixturevalue("postgres_url")


class Api:
    """A TestClient over the real app, with helpers for the calls most tests make."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.admin = {"Authorization": f"Bearer {ADMIN}"}

    def register(self, name: str = "lab-01", owner: str = "alice", approve: bool = True) -> dict:
        answer = self.client.post("/api/v1/machines", json={"name": name, "owner": owner})
        assert answer.status_code == 201, answer.text
        if approve:
            approved = self.client.post(f"/api/v1/machines/{name}/approve", headers=self.admin)
            assert approved.status_code == 200, approved.text
        return {"Authorization": f"Bearer {name}:{answer.json()['secret']}"}

    def post_run(self, run, auth: dict, **kwargs):  # type: ignore[no-untyped-def]
        return self.client.post(
            "/api/v1/runs",
            content=run.to_json(),
            headers={**auth, "Content-Type": "application/json"},
            **kwargs,
        )

    def batch(self, runs: list, auth: dict, probe: dict | None = None):  # type: ignore[no-untyped-def]
        body = {
            "runs": [
                r if isinstance(r, dict) else r.model_dump(mode="json", by_alias=True) for r in runs
            ],
            "probe": probe,
        }
        return self.client.post("/api/v1/runs/batch", json=body, headers=auth)

    def get(self, path: str, admin: bool = False, **params):  # type: ignore[no-untyped-def]
        return self.client.get(f"/api/v1{path}", params=params, headers=self.admin if admin else {})


def make_settings(database: str, **overrides) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(database=database, admin_token=ADMIN, **overrides)


@pytest.fixture
def settings(database: str) -> Settings:
    return make_settings(database)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    app = create_app(settings)
    with TestClient(app) as client:
        yield Api(client)
