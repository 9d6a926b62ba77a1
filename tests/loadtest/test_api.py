"""The load-test API inside `perffarm server`'s app: validation, fuzzing, schema, commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.loadtest.sketch import DDSketch
from perffarm.server.settings import Settings
from perffarm.server.store.tables import metadata
from tests.loadtest.conftest import cli

ADMIN = "admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def client(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PERFFARM_LOADTEST_RESULTS", str(tmp_path / "results"))
    app = create_app(Settings(database=database, admin_token=ADMIN))
    with TestClient(app) as test_client:
        yield test_client


def test_batches_are_checked_field_by_field(client: TestClient) -> None:
    assert client.post("/api/v1/loadtests", json={"id": "t", "started": True}, headers=AUTH)
    url = "/api/v1/loadtests/t/datapoints"
    good = {"worker": "w", "incarnation": "i", "sequence": 0, "datapoints": []}
    cases = {
        "body.datapoints.0.peerId": {**good, "datapoints": [{"peerId": "", "metrics": {}}]},
        "body.datapoints.0.metrics": {**good, "datapoints": [{"peerId": "p", "metrics": 3}]},
        "body.datapoints.0.timestamp": {
            **good,
            "datapoints": [{"peerId": "p", "timestamp": 2**70, "metrics": {}}],
        },
        "body.latency": {**good, "latency": {"accuracy": 0.5, "buckets": {"x": 1}}},
        "body.sequence": {**good, "sequence": -1},
    }
    for field, body in cases.items():
        answer = client.post(url, json=body, headers=AUTH)
        assert answer.status_code == 422, (field, answer.text)
        assert field in answer.json()["detail"]
    sketch = DDSketch()
    sketch.extend([1.0, 2.0, 40.0])
    ok = client.post(url, json={**good, "latency": sketch.to_dict()}, headers=AUTH)
    assert ok.json() == {"accepted": 0, "duplicate": False}
    assert client.get("/api/v1/loadtests/t/summary").json()["latency_ms"]["count"] == 3
    # Through `perffarm server`, ids are checked before they become file names.
    bad = client.post("/test/..%2Fescape")
    assert bad.status_code < 500
    assert client.post("/test/.hidden").json()["status"] == "invalid-test-id"


def test_finish_keeps_the_file_and_the_verdict(client: TestClient, tmp_path: Path) -> None:
    body = {"id": "t2", "started": True, "thresholds": {"received": ["count > 5"]}}
    assert client.post("/api/v1/loadtests", json=body, headers=AUTH).status_code == 201
    batch = {
        "worker": "w",
        "incarnation": "i",
        "sequence": 0,
        "final": True,
        "datapoints": [{"peerId": "p", "metrics": {"received": 2}}] * 2,
    }
    client.post("/api/v1/loadtests/t2/datapoints", json=batch, headers=AUTH)
    finished = client.post("/api/v1/loadtests/t2/finish", headers=AUTH).json()
    assert finished["summary"]["verdict"] == "failed"
    assert finished["summary"]["thresholds"][0]["observed"] == 4
    assert finished["test"]["verdict"] == "failed"
    assert (tmp_path / "results" / "t2.json").exists()
    assert client.post("/api/v1/loadtests/t2/finish", headers=AUTH).status_code == 409
    live = client.get("/api/v1/loadtests/t2/datapoints", params={"after": 0}).json()
    assert len(live["datapoints"]) == 2 and live["next_after"] == live["datapoints"][-1]["id"]


def test_migration_creates_exactly_the_load_test_tables(client: TestClient, database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from perffarm.server.settings import database_url

    engine = sa.create_engine(database_url(database))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    ours = [d for d in diff if "loadtest" in repr(d)]
    assert ours == []


def test_no_server_errors_from_generated_requests(client: TestClient) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    client.post("/api/v1/loadtests", json={"id": "fuzz", "started": True}, headers=AUTH)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", client.app)
    operations = [
        r.ok()
        for r in schema.get_all_operations()
        if "loadtest" in r.ok().path or r.ok().path.startswith(("/test", "/status", "/metrics"))
    ]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=AUTH)
            assert response.status_code < 500, (case.method, case.path, response.text)

        check()


def test_every_command_has_help_with_an_example() -> None:
    for command in ("server", "lighthouse", "worker", "local", "summary", None):
        args = [command, "--help"] if command else ["--help"]
        env = dict(os.environ, COLUMNS="200")
        done = subprocess.run(cli(*args), capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        text = " ".join(done.stdout.split())
        assert "Example:" in text and "perffarm loadtest" in text.split("Example:", 1)[1]


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    unreachable = subprocess.run(
        cli("worker", "--server", "http://127.0.0.1:9", "--test-id", "x"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unreachable.returncode == 1
    assert unreachable.stderr.count("\n") == 1 and "cannot reach the results server" in (
        unreachable.stderr
    )
    bad = subprocess.run(
        cli("local", "--threshold", "received>3"), capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "METRIC=EXPRESSION" in bad.stderr
    assert "Traceback" not in bad.stderr + unreachable.stderr
