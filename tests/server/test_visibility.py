"""One visibility rule for every read: runs and results of approved machines are shown to
everybody; those of a machine waiting for approval to its owner and to admins only.

Checked through every route that reads results (the API and the dashboard's JSON twins),
on SQLite and PostgreSQL, for the owner, another user, an anonymous caller and the admin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.server.core.visibility import can_see
from perffarm.server.store import results, tokens, users
from tests.server.conftest import make_settings
from tests.server.support import ADMIN, make_run

RUNS = 3
SERIES = {"project": "demo", "benchmark": "bench", "metric": "latency", "params": '{"clients":0}'}


@pytest.fixture
def farm(database: str) -> Iterator[tuple[TestClient, dict[str, dict[str, str] | None], int]]:
    app = create_app(make_settings(database))
    with app.state.engine.connect() as conn:
        owner = users.create(conn, "olive", password="correct horse battery")
        other = users.create(conn, "otto", password="correct horse battery")
        heads: dict[str, dict[str, str] | None] = {"anonymous": None}
        for user in (owner, other):
            _, secret = tokens.issue(
                conn, user.id, kind="personal", scopes=tokens.parse_scopes("upload"), lifetime=None
            )
            heads[user.name] = {"Authorization": f"Bearer {secret}"}
    heads["admin"] = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(app) as client:
        created = client.post(
            "/api/v1/machines", json={"name": "waiting-01", "owner": "x"}, headers=heads["olive"]
        )
        assert created.status_code == 201, created.text
        machine = {"Authorization": f"Bearer waiting-01:{created.json()['secret']}"}
        for hour in range(RUNS):
            run = make_run(machine="waiting-01", hour=hour)
            stored = client.post(
                "/api/v1/runs",
                content=run.to_json(),
                headers={**machine, "Content-Type": "application/json"},
            )
            assert stored.status_code == 201, stored.text
        yield client, heads, owner.id


def _counts(client: TestClient, headers: dict[str, str] | None) -> dict[str, int]:
    def get(path: str, **params: str) -> dict:
        answer = client.get(path, params=params, headers=headers or {})
        assert answer.status_code == 200, (path, answer.text)
        return answer.json()

    series = get("/api/v1/series", **SERIES, machine="waiting-01")["items"]
    results = get("/api/v1/results", machine="waiting-01")["items"]
    timeline = get("/api/v1/views/timeline", **SERIES, changepoints="false")
    person = get("/api/v1/views/people/olive")
    home = get("/api/v1/views/home")
    machines = get("/api/v1/views/machines")["machines"]
    listed = get("/api/v1/machines")["items"]
    first = client.get(
        f"/api/v1/views/results/{results[0]['id']}" if results else "/api/v1/views/results/1",
        headers=headers or {},
    )
    return {
        "series": len(series),
        "results": len(results),
        "timeline": timeline["points"],
        "person": len(person["results"]),
        "projects": len(home["projects"]),
        "machines": len([m for m in machines if m["name"] == "waiting-01"]),
        "machine list": len([m for m in listed if m["name"] == "waiting-01"]),
        "machine page": int(
            client.get("/api/v1/views/machines/waiting-01", headers=headers or {}).status_code
            == 200
        ),
        "result": int(first.status_code == 200),
    }


def test_the_owner_and_admins_see_an_unapproved_machine_and_nobody_else(farm) -> None:  # type: ignore[no-untyped-def]
    client, heads, _ = farm
    shown = {
        "series": RUNS,
        "results": RUNS * 3,
        "timeline": RUNS,
        "person": RUNS * 3,
        "projects": 1,
        "machines": 1,
        "machine list": 1,
        "machine page": 1,
        "result": 1,
    }
    hidden = dict.fromkeys(shown, 0)
    assert _counts(client, heads["olive"]) == shown
    assert _counts(client, heads["admin"]) == shown
    assert _counts(client, heads["otto"]) == hidden
    assert _counts(client, heads["anonymous"]) == hidden
    # Approved: everybody sees it, with nothing cached from before getting in the way.
    assert client.post("/api/v1/machines/waiting-01/approve", headers=heads["admin"]).is_success
    assert _counts(client, heads["otto"]) == shown
    assert _counts(client, heads["anonymous"]) == shown


def test_visible_is_the_rule_queries_apply(farm) -> None:  # type: ignore[no-untyped-def]
    client, _, owner_id = farm
    engine = client.app.state.engine
    flt = results.SeriesFilter(
        project="demo", benchmark="bench", metric="latency", params=json.dumps({"clients": 0})
    )
    with engine.connect() as conn:
        for viewer, expected in ((owner_id, RUNS), (owner_id + 1, 0), (None, 0)):
            points, _ = results.series_points(
                conn, flt, admin=False, cursor=None, limit=100, viewer=viewer
            )
            assert len(points) == expected
            items, _ = results.list_results(
                conn,
                results.ResultFilter(machine="waiting-01"),
                admin=False,
                cursor=None,
                limit=100,
                samples=False,
                viewer=viewer,
            )
            assert len(items) == expected * 3
    assert can_see(False, 7, admin=False, viewer=7)
    assert not can_see(False, 7, admin=False, viewer=8)
    assert not can_see(False, None, admin=False, viewer=None)
    assert can_see(False, None, admin=True, viewer=None)
    assert can_see(True, None, admin=False, viewer=None)
