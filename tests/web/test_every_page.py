"""Every page of the dashboard: fits a phone, reachable with the keyboard, links its JSON
twin (which answers), and logs no error in the browser."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.web.support import DESKTOP, PHONE, RELEASE_POINTS, TIMELINE_POINTS, Farm, opened

pytestmark = pytest.mark.browser

TIMELINE = urlencode(
    {
        "project": "webshop",
        "benchmark": "checkout",
        "metric": "latency",
        "params": '{"clients":4}',
        "machine": "lab-01",
    }
)


def _pages(farm: Farm) -> list[str]:
    pages = [
        "/",
        f"/runs/{farm.rich_run}",
        "/timeline",
        f"/timeline?{TIMELINE}",
        "/compare",
        f"/compare?a={farm.baseline}&b={farm.contender}",
        "/machines",
        "/machines/lab-01",
        "/people",
        "/people/bob",
        "/loadtests",
    ]
    return pages


# Whatever can take the focus, and whether Tab can reach it.
_FOCUSABLE = """() => Array.from(document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]'))
  .filter(e => e.id !== 'main' && !e.closest('[hidden]') && e.getClientRects().length)
  .map(e => ({tag: e.tagName, text: (e.textContent || e.name || '').trim().slice(0, 30),
              tab: e.tabIndex}))"""


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_page_fits_is_keyboard_reachable_and_has_a_twin(
    farm: Farm, browser: Any, width: str
) -> None:
    viewport = DESKTOP if width == "desktop" else PHONE
    for path in _pages(farm):
        with opened(browser, farm.url + path, viewport) as page:
            if "timeline?" in path:
                page.wait_for_selector("body[data-chart-ready]")
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= viewport["width"] + 1, (path, scroll)
            unreachable = [e for e in page.evaluate(_FOCUSABLE) if e["tab"] < 0]
            assert unreachable == [], (path, unreachable)
            # The first Tab reaches "Skip to content".
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip", path
            twin = page.locator("footer a", has_text="JSON")
            if path not in ("/timeline", "/compare"):  # the pickers have no data of their own
                href = twin.first.get_attribute("href")
                assert href.startswith("/api/v1/views/"), path
                answer = httpx.get(farm.url + href)
                assert answer.status_code == 200, (path, href)
                assert answer.headers["content-type"].startswith("application/json")


def test_every_page_has_a_json_twin_with_the_same_data(farm: Farm) -> None:
    home = httpx.get(f"{farm.url}/api/v1/views/home").json()
    assert [p["project"] for p in home["projects"]] == ["webshop"]
    assert home["projects"][0]["runs"] == TIMELINE_POINTS + RELEASE_POINTS + 3
    assert {m["name"] for m in home["machines"]} == {"lab-01", "lab-02"}
    machines = httpx.get(f"{farm.url}/api/v1/views/machines").json()["machines"]
    assert machines[0]["hardware"]["cpu"] == "AMD EPYC 7543"
    machine = httpx.get(f"{farm.url}/api/v1/views/machines/lab-02").json()
    assert machine["machine"]["fingerprint"] == "fp-lab-02" and len(machine["runs"]) == 3
    run = httpx.get(f"{farm.url}/api/v1/views/runs/{farm.rich_run}").json()
    assert run["owner"] == "bob"
    assert all("content" not in a for a in run["document"]["attachments"])
    bob = httpx.get(f"{farm.url}/api/v1/views/people/bob").json()
    assert {r["benchmark"] for r in bob["results"]} >= {"search", "login"}
    # Each page links its twin.
    page = httpx.get(f"{farm.url}/machines/lab-02").text
    assert re.search(r'href="/api/v1/views/machines/lab-02"', page)
