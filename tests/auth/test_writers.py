"""Nobody writes where they do not belong (issue 16, cases 1, 2 and 4): an alert changes
only for its machine's owner, the users they let act, the machine and admins; a load test
takes writes only from its creator, admins, approved machines and tokens made for it; and
credentials are checked before a body is read."""

from __future__ import annotations

from typing import Any

import pytest

from perffarm.server.store import alerts
from tests.auth.conftest import Farm, make_farm
from tests.server.support import ADMIN, make_run

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _register(farm: Farm, name: str, *, headers: dict[str, str], approve: bool) -> dict:
    made = farm.client.post(
        "/api/v1/machines", json={"name": name, "owner": "somebody"}, headers=headers
    )
    assert made.status_code == 201, made.text
    if approve:
        assert farm.client.post(f"/api/v1/machines/{name}/approve", headers=ADMIN_AUTH).is_success
    return {"Authorization": f"Bearer {name}:{made.json()['secret']}"}


@pytest.fixture
def world(farm: Farm) -> dict[str, Any]:
    alice = farm.bearer(farm.token(farm.alice, "upload"))
    bob = farm.bearer(farm.token(farm.bob, "upload"))
    a01 = _register(farm, "a-01", headers=alice, approve=True)
    b01 = _register(farm, "b-01", headers=bob, approve=True)
    stranger = _register(farm, "x-01", headers={}, approve=False)
    run = make_run(machine="a-01")
    stored = farm.client.post(
        "/api/v1/runs", content=run.to_json(), headers={**a01, "Content-Type": "application/json"}
    )
    assert stored.status_code == 201, stored.text
    (key,) = [
        k
        for k in farm.client.get("/api/v1/series/keys", params={"project": "demo"}).json()["items"]
        if k["metric"] == run.results[0].metric and k["benchmark"] == run.results[0].benchmark
    ][:1]
    with farm.engine.begin() as conn:
        machine_id = conn.exec_driver_sql("SELECT id FROM machines WHERE name = 'a-01'").scalar()
        alerts.record(conn, [_new_alert(key["id"], machine_id, str(run.id))])
    (alert,) = farm.client.get("/api/v1/alerts").json()["items"]
    return {
        "alice": alice,
        "bob": bob,
        "a01": a01,
        "b01": b01,
        "stranger": stranger,
        "alert": alert["id"],
        "series": key["id"],
        "run": str(run.id),
    }


def _new_alert(series_id: int, machine_id: int, run_id: str) -> alerts.NewAlert:
    return alerts.NewAlert(
        series_id=series_id,
        machine_id=machine_id,
        project="demo",
        benchmark="bench",
        params="{}",
        metric="latency",
        branch="main",
        fingerprint="fp-a",
        unit="s",
        direction="lower",
        magnitude=0.1,
        magnitude_low=0.08,
        magnitude_high=0.12,
        p_value=1e-6,
        mean_before=1.0,
        mean_after=1.1,
        n_before=10,
        n_after=10,
        noise_cv=0.01,
        noise_run_to_run=0.01,
        noise_level="low",
        run_before=run_id,
        run_after=run_id,
        commit_before="a" * 40,
        commit_after="b" * 40,
        commit_time_before=None,
        commit_time_after=None,
    )


def _state(farm: Farm, alert: int, headers: dict[str, str], state: str = "invalid") -> int:
    path = f"/api/v1/alerts/{alert}/state"
    return farm.client.post(path, json={"state": state}, headers=headers).status_code


def _history(farm: Farm, alert: int) -> list[tuple[str, str]]:
    detail = farm.client.get(f"/api/v1/alerts/{alert}", headers=ADMIN_AUTH).json()
    return [(h["state"], h["by"]) for h in detail["history"]]


def test_only_the_owner_the_users_they_allow_the_machine_and_admins_change_an_alert(
    farm: Farm, world: dict[str, Any]
) -> None:
    alert = world["alert"]
    for stranger in ("bob", "b01", "stranger"):
        assert _state(farm, alert, world[stranger]) == 403, stranger
    assert _history(farm, alert) == [("new", "perffarm")]

    assert _state(farm, alert, world["alice"], "acknowledged") == 200
    assert _state(farm, alert, world["a01"], "fixed") == 200
    assert _state(farm, alert, ADMIN_AUTH, "new") == 200

    # Alice lets Bob act on her machine; his token may now change its alerts.
    grant = farm.client.post(
        "/api/v1/machines/a-01/grants", json={"user": "bob"}, headers=world["alice"]
    )
    assert grant.status_code == 201, grant.text
    assert [g["user"] for g in grant.json()["items"]] == ["bob"]
    assert (
        farm.client.post(
            "/api/v1/machines/a-01/grants", json={"user": "bob"}, headers=world["bob"]
        ).status_code
        == 403
    )  # only the owner (or an admin) grants
    assert _state(farm, alert, world["bob"], "invalid") == 200
    assert farm.client.delete("/api/v1/machines/a-01/grants/bob", headers=world["alice"]).is_success
    assert _state(farm, alert, world["bob"], "new") == 403
    assert _history(farm, alert) == [
        ("new", "perffarm"),
        ("acknowledged", "user:alice"),
        ("fixed", "machine:a-01"),
        ("new", "admin"),
        ("invalid", "user:bob"),
    ]


def test_a_new_normal_follows_the_same_rule(farm: Farm, world: dict[str, Any]) -> None:
    path = f"/api/v1/series/{world['series']}/breaks"
    body = {"run_id": world["run"]}
    for stranger in ("bob", "b01", "stranger"):
        assert farm.client.post(path, json=body, headers=world[stranger]).status_code == 403
    assert farm.client.get(path).json()["items"] == []
    assert farm.client.post(path, json=body, headers=world["alice"]).status_code == 201


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/alerts/1/state"),
        ("POST", "/api/v1/series/1/breaks"),
        ("POST", "/api/v1/loadtests"),
        ("POST", "/api/v1/loadtests/t/start"),
        ("POST", "/api/v1/machines/a-01/grants"),
    ],
)
def test_credentials_come_before_the_body(farm: Farm, method: str, path: str) -> None:
    """An anonymous write with an empty body is a 401, not the schema's field errors."""
    answer = farm.client.request(method, path, json={})
    assert answer.status_code == 401, (path, answer.text)
    assert answer.json()["errors"] == []


def test_load_tests_take_writes_only_from_those_allowed(farm: Farm, world: dict[str, Any]) -> None:
    base = "/api/v1/loadtests"
    # An unapproved, anonymously registered machine may neither create a test nor write to
    # anybody's.
    assert farm.client.post(base, json={"id": "x"}, headers=world["stranger"]).status_code == 403
    made = farm.client.post(base, json={"id": "alices"}, headers=world["alice"])
    assert made.status_code == 201, made.text
    admins = farm.client.post(base, json={"id": "admins"}, headers=ADMIN_AUTH)
    assert admins.status_code == 201
    for test in ("alices", "admins"):
        for stranger in ("stranger", "bob"):
            refused = farm.client.post(f"{base}/{test}/start", headers=world[stranger])
            assert refused.status_code == 403, (test, stranger, refused.text)
    assert farm.client.get(f"{base}/admins").json()["status"] == "created"

    # Its creator may, and give its workers a token made for this test alone.
    assert farm.client.post(f"{base}/alices/start", headers=world["alice"]).is_success
    token = farm.client.post(f"{base}/alices/tokens", headers=world["alice"])
    assert token.status_code == 201, token.text
    worker = {"X-Perffarm-Loadtest-Token": token.json()["token"]}
    batch = {
        "worker": "w",
        "incarnation": "i",
        "sequence": 0,
        "datapoints": [{"peerId": "p", "metrics": {"sent": 1}}],
    }
    sent = farm.client.post(f"{base}/alices/datapoints", json=batch, headers=worker)
    assert sent.status_code == 200, sent.text
    # The token is this test's: it opens no other.
    assert farm.client.post(f"{base}/admins/start", headers=worker).status_code == 401
    # Approved machines run the workers.
    assert farm.client.post(f"{base}/admins/start", headers=world["b01"]).is_success
    finished = farm.client.post(f"{base}/alices/finish", headers=world["bob"])
    assert finished.status_code == 403
    assert farm.client.get(f"{base}/alices").json()["datapoints"] == 1


def test_admin_only_registration_refuses_before_reading_the_body(database: str) -> None:
    for farm in make_farm(database, registration="admin"):
        anonymous = farm.client.post("/api/v1/machines", json={})
        assert anonymous.status_code == 401 and anonymous.json()["errors"] == []
        alice = farm.bearer(farm.token(farm.alice, "upload"))
        refused = farm.client.post("/api/v1/machines", json={}, headers=alice)
        assert refused.status_code == 403 and "admins only" in refused.json()["detail"]
        made = farm.client.post(
            "/api/v1/machines", json={"name": "m-1", "owner": "alice"}, headers=ADMIN_AUTH
        )
        assert made.status_code == 201
