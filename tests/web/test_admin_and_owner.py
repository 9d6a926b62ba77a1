"""Signed-in people on the dashboard: an admin approves a machine from its page, and the
owner of a machine waiting for approval sees its runs where nobody else does.

A server of its own (approving changes what every page shows), real users and sessions:
sign-in goes through the /signin form in headless Chromium.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from perffarm.server.settings import database_url
from perffarm.server.store import tokens, users
from perffarm.server.store.engine import make_engine
from tests.server.support import ServerProcess
from tests.web.conftest import DATABASES, scratch_database
from tests.web.support import DESKTOP, shot, timeline_runs, upload

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
SERIES = {
    "project": "webshop",
    "benchmark": "checkout",
    "metric": "latency",
    "params": json.dumps({"clients": 4}),
}
POINTS = 12


@dataclass
class Place:
    url: str
    alice: dict[str, str]  # the owner's token
    bob: dict[str, str]  # another user's token


@pytest.fixture(scope="module", params=DATABASES)
def place(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Place]:
    tmp = tmp_path_factory.mktemp("web-owner")
    with scratch_database(request.param, tmp) as database, ServerProcess(database, tmp) as server:
        engine = make_engine(database_url(database))
        with engine.connect() as conn:
            users.create(conn, "root", password=PASSWORD, is_admin=True)
            alice = users.create(conn, "alice", password=PASSWORD)
            bob = users.create(conn, "bob", password=PASSWORD)
            secrets = {}
            for user in (alice, bob):
                _, secrets[user.name] = tokens.issue(
                    conn,
                    user.id,
                    kind="personal",
                    scopes=tokens.parse_scopes("upload"),
                    lifetime=None,
                )
        engine.dispose()
        found = Place(
            url=server.url,
            alice={"Authorization": f"Bearer {secrets['alice']}"},
            bob={"Authorization": f"Bearer {secrets['bob']}"},
        )
        _pending_machine(found, "pending-01")
        yield found


def _pending_machine(place: Place, name: str, owner: str = "alice") -> None:
    """A machine registered by its owner (nobody approved it), with runs. Each test that
    approves one makes its own, so the tests' order does not matter."""
    headers = place.alice if owner == "alice" else place.bob
    with httpx.Client(base_url=place.url, timeout=60) as client:
        answer = client.post(
            "/api/v1/machines", json={"name": name, "owner": owner}, headers=headers
        )
        assert answer.status_code == 201, answer.text
        machine = {"Authorization": f"Bearer {name}:{answer.json()['secret']}"}
        main, _ = timeline_runs(name)
        upload(client, machine, main[:POINTS])


@contextmanager
def signed_in(browser: Any, url: str, name: str | None) -> Iterator[Any]:
    """A browser context signed in as ``name`` (None: anonymous); fails on page errors."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(f"{m.text} {m.location['url']}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        if name is not None:
            page.goto(f"{url}/signin?next=/machines")
            page.fill("#username", name)
            page.fill("#password", PASSWORD)
            with page.expect_navigation():
                page.click("#signin")
            assert page.url.endswith("/machines"), page.url
            assert f"Signed in as {name}" in page.inner_text("header")
        yield page
        assert errors == [], errors
    finally:
        context.close()


def _series(
    place: Place, headers: dict[str, str] | None = None, machine: str = "pending-01"
) -> list[dict]:
    answer = httpx.get(
        f"{place.url}/api/v1/series", params={**SERIES, "machine": machine}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def _results(
    place: Place, headers: dict[str, str] | None = None, machine: str = "pending-01"
) -> list[dict]:
    answer = httpx.get(f"{place.url}/api/v1/results", params={"machine": machine}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def _timeline(place: Place, headers: dict[str, str] | None = None) -> dict:
    return httpx.get(
        f"{place.url}/api/v1/views/timeline",
        params={**SERIES, "machine": "pending-01", "changepoints": "false"},
        headers=headers,
    ).json()


def test_the_owner_sees_her_unapproved_machine_and_nobody_else_does(
    place: Place, browser: Any
) -> None:
    # The API: one series, the results listing, the dashboard's JSON twins.
    assert len(_series(place, place.alice)) == POINTS
    assert len(_results(place, place.alice)) == POINTS
    assert _timeline(place, place.alice)["points"] == POINTS
    person = httpx.get(f"{place.url}/api/v1/views/people/alice", headers=place.alice).json()
    assert len(person["results"]) == POINTS and person["machines"][0]["name"] == "pending-01"
    for other in (place.bob, None):
        assert _series(place, other) == []
        assert _results(place, other) == []
        assert _timeline(place, other)["lines"] == []
        person = httpx.get(f"{place.url}/api/v1/views/people/alice", headers=other).json()
        assert person["results"] == [] and person["machines"] == []
    # The pages, signed in through the browser.
    timeline = "/timeline?" + httpx.QueryParams({**SERIES, "machine": "pending-01"}).__str__()
    with signed_in(browser, place.url, "alice") as page:
        assert "pending-01" in page.inner_text("main")
        assert page.locator("form.approve").count() == 0  # not an admin
        page.goto(place.url + timeline)
        page.wait_for_selector("body[data-chart-ready]")
        assert page.get_attribute("#chart", "data-points") == str(POINTS)
        page.goto(f"{place.url}/machines/pending-01")
        assert "not yet" in page.inner_text("main")
    with signed_in(browser, place.url, "bob") as page:
        assert "pending-01" not in page.inner_text("main")
        page.goto(place.url + timeline)
        page.wait_for_selector("#chart[data-complete]")
        assert page.get_attribute("#chart", "data-points") == "0"
        assert page.request.get(f"{place.url}/machines/pending-01").status == 404
    with signed_in(browser, place.url, None) as page:
        assert page.request.get(f"{place.url}/machines/pending-01").status == 404


def test_an_admin_approves_from_the_page_and_forged_posts_are_refused(
    place: Place, browser: Any, screenshots: Path
) -> None:
    _pending_machine(place, "approve-01", owner="bob")
    approve = f"{place.url}/auth/machines/approve-01/approve"
    # A signed-in user who is not an admin gets no button, and a post of theirs is refused
    # even with a valid CSRF token.
    with signed_in(browser, place.url, "bob") as page:
        assert page.locator("form.approve").count() == 0
        token = next(c["value"] for c in page.context.cookies() if c["name"] == "perffarm_csrf")
        refused = page.request.post(approve, form={"csrf_token": token})
        assert refused.status == 403 and "Only admins" in refused.text()
    with signed_in(browser, place.url, "root") as page:
        row = page.locator("tr", has_text="approve-01")
        button = row.locator("form.approve button")
        assert button.count() == 1
        shot(page, screenshots, "machines-approve.png")
        # Forged: the admin's session cookie comes along, but no CSRF token (or a wrong one).
        for form in ({}, {"csrf_token": "x" * 43}):
            forged = page.request.post(approve, form=form)
            assert forged.status == 403 and "did not come from this site" in forged.text()
        assert _series(place, machine="approve-01") == []  # still hidden from everybody else
        # The button, reached with the keyboard.
        button.focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.endswith("/machines")
        assert (
            "no" not in page.locator("tr", has_text="approve-01").locator("td").nth(6).inner_text()
        )
        assert page.locator("tr", has_text="approve-01").locator("form.approve").count() == 0
    # Approved: everybody sees its runs now.
    assert len(_series(place, machine="approve-01")) == POINTS
    assert len(_results(place, place.bob, machine="approve-01")) == POINTS
    machine = httpx.get(f"{place.url}/api/v1/machines/approve-01").json()
    assert machine["approved"] is True
    # Without the session (a cross-site form post carries no intent): refused as any caller
    # without credentials is (401), not approved.
    assert httpx.post(approve, data={"csrf_token": "x" * 43}).status_code == 401
