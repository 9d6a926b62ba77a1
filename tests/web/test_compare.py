"""Compare (views/compare.py): verdicts, sorting, filtering and paging by the server, kept in
the address; by runs, commits or branches; the page and its twin alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.web.support import (
    PHONE,
    Farm,
    no_horizontal_scroll,
    opened,
    shot,
)

pytestmark = pytest.mark.browser


def _compare_rows(page: Any) -> list[tuple[str, str]]:
    return [
        (row.get_attribute("data-name").split(" ")[0], row.get_attribute("data-verdict"))
        for row in page.locator("#comparison tbody tr:not([hidden])").all()
    ]


def test_compare_shows_verdicts_sorts_filters_and_keeps_it_in_the_url(
    farm: Farm, browser: Any, screenshots: Path
) -> None:
    url = f"{farm.url}/compare?a={farm.baseline}&b={farm.contender}"
    with opened(browser, url) as page:
        rows = dict(_compare_rows(page))
        assert rows == farm.expected_verdicts
        assert page.locator("#comparison tr.v-slower").count() == 2
        shot(page, screenshots, "compare.png")

        # Sorting, filtering and paging are links and a form: the server does them over
        # every row, and the address holds the view.
        with page.expect_navigation():
            page.click("a[data-key='ratio']")
        ratios = [
            float(r.get_attribute("data-ratio")) for r in page.locator("#comparison tbody tr").all()
        ]
        assert ratios == sorted(ratios)
        assert _compare_rows(page)[0][0] == "login"
        with page.expect_navigation():
            page.click("a[data-key='ratio']")
        assert _compare_rows(page)[0][0] == "search"
        assert page.get_attribute("th:has(a[data-key='ratio'])", "aria-sort") == "descending"

        with page.expect_navigation():
            page.select_option("#verdict", "slower")
        assert [name for name, _ in _compare_rows(page)] == ["search", "payment"]
        # Keyboard only: type in the filter box and press Enter.
        page.focus("#filter")
        page.keyboard.type("pay")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert [name for name, _ in _compare_rows(page)] == ["payment"]
        assert "1–1 of 1 matching (6 in all)" in page.inner_text("#shown")
        shared = page.url
    query = parse_qs(urlparse(shared).query)
    assert query["verdict"] == ["slower"] and query["sort"] == ["ratio"] and query["q"] == ["pay"]
    # The shared address shows the same view.
    with opened(browser, shared) as page:
        assert [name for name, _ in _compare_rows(page)] == ["payment"]
    # Pages: two rows a page, sorted by name; Next goes on with the same sort and filter.
    with opened(browser, url + "&sort=name&per_page=2") as page:
        assert [name for name, _ in _compare_rows(page)] == ["cart", "catalog"]
        assert page.get_attribute("#comparison", "data-pages") == "3"
        with page.expect_navigation():
            page.click("#next-page")
        assert [name for name, _ in _compare_rows(page)] == ["login", "payment"]
        assert parse_qs(urlparse(page.url).query)["page"] == ["2"]
    with opened(browser, url, PHONE) as page:
        no_horizontal_scroll(page)
        shot(page, screenshots, "compare-phone.png")


def test_compare_twin_pages_sorts_and_filters_like_the_page(farm: Farm) -> None:
    base = {"a": farm.baseline, "b": farm.contender}
    twin = f"{farm.url}/api/v1/views/compare"
    every = httpx.get(twin, params=base).json()
    assert every["total"] == every["matched"] == 6 and every["pages"] == 1
    paged = httpx.get(twin, params={**base, "sort": "name", "per_page": 4, "page": 2}).json()
    assert [r["benchmark"] for r in paged["rows"]] == ["profile", "search"]
    assert paged["page"] == 2 and paged["pages"] == 2 and paged["first"] == 5
    slower = httpx.get(
        twin, params={**base, "verdict": "slower", "sort": "ratio", "dir": "desc"}
    ).json()
    assert [r["benchmark"] for r in slower["rows"]] == ["search", "payment"]
    assert slower["matched"] == 2 and slower["counts"]["slower"] == 2
    assert httpx.get(twin, params={**base, "sort": "nope"}).status_code == 422


def test_compare_by_branches_and_its_twin(farm: Farm) -> None:
    twin = httpx.get(
        f"{farm.url}/api/v1/views/compare",
        params={
            "project": "webshop",
            "machine": "lab-02",
            "a_branch": "main",
            "b_branch": "feature",
        },
    ).json()
    assert twin["contender"]["id"] == farm.contender
    assert {row["benchmark"]: row["verdict"] for row in twin["rows"]} == farm.expected_verdicts
    for row in twin["rows"]:
        low, high = row["comparison"]["ratio_ci"]
        assert low <= row["comparison"]["ratio"] <= high
    page = httpx.get(
        f"{farm.url}/compare",
        params={"project": "webshop", "a_commit": "aaaa" * 10, "b_commit": "bbbb" * 10},
    )
    assert page.status_code == 200 and farm.contender[:8] in page.text
    missing = httpx.get(f"{farm.url}/compare", params={"a_branch": "nope", "b_branch": "main"})
    assert missing.status_code == 404 and "no run with branch nope" in missing.text
