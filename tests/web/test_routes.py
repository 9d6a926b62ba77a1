"""Every page declared in web/routes.py and its JSON twin, on the real app over SQLite and
PostgreSQL: both routes exist, answer with the same status, show the same data, and follow
the same visibility rule for the same caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import escape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from perffarm.model.api import API_PREFIX
from perffarm.server.store import tokens, users
from perffarm.web import routes
from tests.server.support import ADMIN, make_run

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
RUNS = 3


@dataclass
class Farm:
    client: TestClient
    runs: list[str]  # of lab-01 (approved, owner alice), oldest first
    hidden: str  # of waiting-01 (not approved, registered by olive)
    olive: dict[str, str]
    otto: dict[str, str]


def _upload(client: TestClient, headers: dict[str, str], machine: str, hour: int) -> str:
    run = make_run(machine=machine, hour=hour)
    stored = client.post(
        "/api/v1/runs",
        content=run.to_json(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert stored.status_code == 201, stored.text
    return str(run.id)


@pytest.fixture
def farm(client: TestClient) -> Iterator[Farm]:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    heads = {}
    with engine.connect() as conn:
        for name in ("olive", "otto"):
            user = users.create(conn, name, password="correct horse battery")
            _, secret = tokens.issue(
                conn, user.id, kind="personal", scopes=tokens.parse_scopes("upload"), lifetime=None
            )
            heads[name] = {"Authorization": f"Bearer {secret}"}
    lab = client.post("/api/v1/machines", json={"name": "lab-01", "owner": "alice"})
    assert lab.status_code == 201, lab.text
    assert client.post("/api/v1/machines/lab-01/approve", headers=ADMIN_HEADERS).is_success
    lab_auth = {"Authorization": f"Bearer lab-01:{lab.json()['secret']}"}
    waiting = client.post(
        "/api/v1/machines", json={"name": "waiting-01", "owner": "olive"}, headers=heads["olive"]
    )
    assert waiting.status_code == 201, waiting.text
    waiting_auth = {"Authorization": f"Bearer waiting-01:{waiting.json()['secret']}"}
    runs = [_upload(client, lab_auth, "lab-01", hour) for hour in range(RUNS)]
    hidden = _upload(client, waiting_auth, "waiting-01", 0)
    created = client.post(
        "/api/v1/loadtests",
        json={"id": "lt-1", "started": True, "description": "a load test"},
        headers=ADMIN_HEADERS,
    )
    assert created.status_code == 201, created.text
    yield Farm(client, runs, hidden, heads["olive"], heads["otto"])


def _pair(
    farm: Farm, page: str, twin: str, headers: dict[str, str] | None = None
) -> tuple[Any, Any]:
    answers = (
        farm.client.get(page, headers=headers or {}),
        farm.client.get(f"{API_PREFIX}/views{twin}", headers=headers or {}),
    )
    assert answers[0].status_code == answers[1].status_code, (page, answers[1].text)
    return answers


def _walk(routes_: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes_:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif getattr(route, "methods", None):
            yield prefix + route.path, route.name


def test_every_declared_page_has_its_page_and_its_twin(client: TestClient) -> None:
    served = dict(_walk(client.app.routes))  # type: ignore[attr-defined]
    declared = routes.site.declared
    assert {page.name for page in declared} >= {
        "home",
        "run",
        "timeline",
        "compare",
        "machines",
        "machine",
        "people",
        "person",
        "loadtests",
        "loadtest",
    }
    for page in declared:
        assert served[f"{API_PREFIX}/views{page.path}"] == f"{page.name}_twin"
        if page.template is not None:
            assert served[page.page_path or page.path] == f"{page.name}_page"


# (page, twin, what the page must show of the twin's data)
Shows = Callable[[dict[str, Any]], list[str]]


def _cases(farm: Farm) -> list[tuple[str, str, Shows]]:
    first, last = farm.runs[0], farm.runs[-1]
    return [
        (
            "/",
            "/home",
            lambda j: (
                [f'href="/runs/{r["id"]}"' for r in j["latest_runs"]]
                + [f'href="/machines/{m["name"]}"' for m in j["machines"]]
                + [p["project"] for p in j["projects"]]
            ),
        ),
        (
            f"/runs/{last}",
            f"/runs/{last}",
            lambda j: [f'href="/compare?a={j["previous_run"]}&amp;b={last}"', j["machine"]],
        ),
        (
            "/machines",
            "/machines",
            lambda j: [f'href="/machines/{m["name"]}"' for m in j["machines"]],
        ),
        (
            "/machines/lab-01",
            "/machines/lab-01",
            lambda j: [f'href="/runs/{r["id"]}"' for r in j["runs"]],
        ),
        (
            "/people",
            "/people",
            lambda j: (
                [f'href="/people/{o["owner"]}"' for o in j["owners"]]
                + [f'href="/runs/{r["run_id"]}"' for r in j["results"]]
            ),
        ),
        (
            "/people/alice",
            "/people/alice",
            lambda j: [f'href="/runs/{r["run_id"]}"' for r in j["results"]],
        ),
        (
            f"/compare?a={first}&b={last}",
            f"/compare?a={first}&b={last}",
            lambda j: (
                [f'data-name="{escape(r["name"])}"' for r in j["rows"]] + [j["contender"]["id"][:8]]
            ),
        ),
        (
            "/loadtests",
            "/loadtests",
            lambda j: [f'href="/loadtests/{t["id"]}"' for t in j["tests"]],
        ),
        (
            "/loadtests/lt-1",
            "/loadtests/lt-1",
            lambda j: [j["test"]["description"], f'/views/loadtests/{j["test"]["id"]}"'],
        ),
    ]


def test_each_page_shows_its_twins_data(farm: Farm) -> None:
    for page, twin, shows in _cases(farm):
        html, data = _pair(farm, page, twin)
        assert html.status_code == 200, (page, html.text[:300])
        assert html.headers["content-type"].startswith("text/html")
        assert data.headers["content-type"] == "application/json"
        expected = shows(data.json())
        assert expected, page  # something to compare
        missing = [text for text in expected if text not in html.text]
        assert missing == [], (page, missing)


@pytest.mark.parametrize("caller", ["anonymous", "otto", "olive", "admin"])
def test_hidden_or_missing_is_a_404_on_both_for_the_same_callers(farm: Farm, caller: str) -> None:
    headers = {"anonymous": {}, "otto": farm.otto, "olive": farm.olive, "admin": ADMIN_HEADERS}[
        caller
    ]
    sees = caller in ("olive", "admin")  # the owner of the waiting machine, and admins
    for page, twin in (
        (f"/runs/{farm.hidden}", f"/runs/{farm.hidden}"),
        ("/machines/waiting-01", "/machines/waiting-01"),
        (
            f"/compare?a={farm.runs[0]}&b={farm.hidden}",
            f"/compare?a={farm.runs[0]}&b={farm.hidden}",
        ),
    ):
        html, data = _pair(farm, page, twin, headers)
        assert html.status_code == (200 if sees else 404), (caller, page)
        if not sees:
            assert "Not found" in html.text
            assert data.json()["detail"].startswith(("no run", "no machine"))
    for page, detail, says in (
        ("/machines/nope", "no machine named 'nope'", "There is no machine 'nope'"),
        ("/loadtests/nope", "no load test 'nope'", "no load test 'nope'"),
        (
            "/compare?a_branch=nope&b_branch=main",
            "no run with branch nope",
            "no run with branch nope (or its machine is not approved).",
        ),
    ):
        html, data = _pair(farm, page, page, headers)
        assert html.status_code == 404, page
        assert data.json() == {"detail": detail, "errors": []}
        assert says in html.text.replace("&#39;", "'")


def test_values_the_views_refuse_are_a_422_on_both(farm: Farm) -> None:
    a, b = farm.runs[0], farm.runs[-1]
    for page in (
        "/people?cursor=nonsense",
        "/people/alice?cursor=nonsense",
        f"/compare?a={a}&b={b}&sort=nope",
        f"/compare?a={a}&b={b}&dir=up",
    ):
        html, data = _pair(farm, page, page)
        assert html.status_code == 422, page
        assert "Bad query" in html.text and data.json()["detail"] in html.text


def test_compare_without_runs_is_a_form_on_the_page_and_a_422_on_the_twin(farm: Farm) -> None:
    page = farm.client.get("/compare", params={"b": farm.runs[0]})
    assert page.status_code == 200 and 'name="a"' in page.text
    twin = farm.client.get(f"{API_PREFIX}/views/compare", params={"b": farm.runs[0]})
    assert twin.status_code == 422
    assert twin.json()["detail"] == "give a=RUN_ID, a_commit=SHA or a_branch=NAME"


def test_static_files_are_served_and_nothing_beside_them(client: TestClient) -> None:
    css = client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.head("/static/app.css").headers["content-length"] == str(len(css.content))
    again = client.get("/static/app.css", headers={"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304
    for outside in ("/static/%2e%2e/routes.py", "/static/..%2Froutes.py", "/static/nope.css"):
        assert client.get(outside).status_code == 404, outside
