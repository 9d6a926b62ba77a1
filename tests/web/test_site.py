"""The registration helper (web/site.py) on a small app of its own: a page declared once
answers as HTML and as JSON with the same data, the same parameters, the same errors.

The app has the server's error handlers (server/http/errors.py) and the dashboard's
templates; the pages read from a dict, so the helper is all that is tested.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Query, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.testclient import TestClient

from perffarm.model.api import API_PREFIX
from perffarm.server.core.errors import Invalid, NotFound
from perffarm.server.http import errors
from perffarm.web.site import Page, Site

FRUIT = {"apples": ["cox", "gala", "jonagold"], "pears": ["conference"]}
CALLS: list[tuple[str, Any]] = []


async def shelves() -> dict[str, list[str]]:
    return FRUIT


async def picked(name: str, first: int = Query(10, ge=1, le=100)) -> tuple[str, int]:
    return name, first


def shelf(store: dict[str, list[str]], asked: tuple[str, int]) -> dict[str, Any]:
    """One shelf's fruit, the first few."""
    name, first = asked
    CALLS.append(("shelf", asked))
    if name == "bad":
        raise Invalid("bad: not a shelf name")
    if name not in store:
        raise NotFound(f"no shelf {name!r}")
    return {"name": name, "fruit": store[name][:first]}


def counts(store: dict[str, list[str]], _: None) -> bytes:
    """How much fruit each shelf holds, as JSON already."""
    return ("{" + ",".join(f'"{k}":{len(v)}' for k, v in sorted(store.items())) + "}").encode()


async def nothing() -> None:
    return None


def choose(_request: Request, _store: Any, asked: tuple[str, int]) -> Response | None:
    """A page's form: "any" shelf names nothing to show."""
    return PlainTextResponse("choose a shelf") if asked[0] == "any" else None


@pytest.fixture
def client() -> Iterator[TestClient]:
    site = Site()
    site.add(
        Page(
            "/shelves/{name}",
            "shelf",
            shelves,
            picked,
            shelf,
            template="error.html",
            title=lambda asked, data: f"Shelf {data['name']}",
            context=lambda _request, _asked, data: {"message": " and ".join(data["fruit"])},
            missing=lambda asked, exc: f"Nothing here: {exc}.",
            form=choose,
        )
    )
    site.add(Page("/counts", "counts", shelves, nothing, counts))
    app = FastAPI(openapi_url="/openapi.json")
    errors.install(app)
    app.include_router(site.twins, prefix=API_PREFIX)
    app.include_router(site.pages)
    CALLS.clear()
    with TestClient(app) as test_client:
        yield test_client


def test_the_page_and_its_twin_answer_the_same_data(client: TestClient) -> None:
    page = client.get("/shelves/apples", params={"first": 2})
    twin = client.get(f"{API_PREFIX}/views/shelves/apples", params={"first": 2})
    assert page.status_code == twin.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert twin.headers["content-type"] == "application/json"
    assert twin.json() == {"name": "apples", "fruit": ["cox", "gala"]}
    assert "<title>Shelf apples" in page.text and "cox and gala" in page.text
    assert "jonagold" not in page.text
    # One call of the view each, with the same parameters.
    assert CALLS == [("shelf", ("apples", 2)), ("shelf", ("apples", 2))]


def test_the_same_404_as_a_page_and_as_the_apis_json(client: TestClient) -> None:
    page = client.get("/shelves/plums")
    twin = client.get(f"{API_PREFIX}/views/shelves/plums")
    assert page.status_code == twin.status_code == 404
    assert "Nothing here: no shelf &#39;plums&#39;." in page.text
    assert twin.json() == {"detail": "no shelf 'plums'", "errors": []}


def test_the_same_422_for_a_value_the_view_refuses(client: TestClient) -> None:
    page = client.get("/shelves/bad")
    twin = client.get(f"{API_PREFIX}/views/shelves/bad")
    assert page.status_code == twin.status_code == 422
    assert "Bad query" in page.text and "bad: not a shelf name" in page.text
    assert twin.json()["detail"] == "bad: not a shelf name"


def test_the_same_parameters_are_checked_the_same_way(client: TestClient) -> None:
    for path in ("/shelves/apples", f"{API_PREFIX}/views/shelves/apples"):
        answer = client.get(path, params={"first": 0})
        assert answer.status_code == 422, path
        assert answer.json()["errors"][0]["field"] == "query.first"
    assert CALLS == []


def test_a_form_answers_for_the_page_only(client: TestClient) -> None:
    page = client.get("/shelves/any")
    twin = client.get(f"{API_PREFIX}/views/shelves/any")
    assert page.status_code == 200 and page.text == "choose a shelf"
    assert twin.status_code == 404 and twin.json()["detail"] == "no shelf 'any'"


def test_a_page_without_template_is_json_only_and_bytes_pass_as_they_are(
    client: TestClient,
) -> None:
    twin = client.get(f"{API_PREFIX}/views/counts")
    assert twin.status_code == 200 and twin.content == b'{"apples":3,"pears":1}'
    assert client.get("/counts").status_code == 404


def test_the_twins_are_described_by_their_views_and_the_pages_are_not_in_the_schema(
    client: TestClient,
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {f"{API_PREFIX}/views/shelves/{{name}}", f"{API_PREFIX}/views/counts"}
    operation = paths[f"{API_PREFIX}/views/shelves/{{name}}"]["get"]
    assert operation["description"] == "One shelf's fruit, the first few."
    assert operation["summary"] == "Shelf Twin"
    assert [p["name"] for p in operation["parameters"]] == ["name", "first"]
