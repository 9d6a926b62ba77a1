"""The dashboard in real headless Chromium against a real server process."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest

from tests.web.support import (
    LOG_BYTES,
    PHONE,
    RELEASE_POINTS,
    REPORT_BYTES,
    STEP_AT,
    TIMELINE_POINTS,
    Farm,
    opened,
    shot,
)

pytestmark = pytest.mark.browser

TIMELINE_QUERY = {
    "project": "webshop",
    "benchmark": "checkout",
    "metric": "latency",
    "params": '{"clients":4}',
    "machine": "lab-01",
}


def _no_horizontal_scroll(page: Any) -> None:
    # Wide tables scroll inside their own box; the page itself must fit a phone.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, width


def test_home_lists_projects_runs_and_only_approved_machines(
    farm: Farm, browser: Any, screenshots: Path
) -> None:
    with opened(browser, farm.url + "/") as page:
        text = page.inner_text("main")
        assert "webshop" in text
        assert "lab-01" in text and "lab-02" in text
        assert "hidden-01" not in text and "mallory" not in text
        assert page.locator(f"a[href='/runs/{farm.contender}']").count() == 1
        shot(page, screenshots, "home.png")
        # The first Tab reaches the skip link, which moves focus to the content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
    with opened(browser, farm.url + "/", PHONE) as page:
        _no_horizontal_scroll(page)
        shot(page, screenshots, "home-phone.png")


def test_home_shows_the_alert_raised_by_the_step(farm: Farm, browser: Any) -> None:
    deadline = time.monotonic() + 60
    while True:
        alerts = httpx.get(f"{farm.url}/api/v1/views/home").json()["alerts"]
        if alerts is None:
            pytest.skip("this server has no alerts (issue 6)")
        if any(a["benchmark"] == "checkout" and a["branch"] == "main" for a in alerts):
            break
        assert time.monotonic() < deadline, alerts
        time.sleep(0.5)
    with opened(browser, farm.url + "/") as page:
        alert = page.locator("li.alert", has_text="checkout").first
        assert "regression" in alert.inner_text() and "+10." in alert.inner_text()
        with page.expect_navigation():
            alert.locator("a").first.click()
        page.wait_for_selector("body[data-chart-ready]")
        assert page.get_attribute("#chart", "data-points") == str(TIMELINE_POINTS)
        # The alert is listed under the chart (and marked on it) with the step's commit.
        page.wait_for_selector("#alerts[data-count='1']")
        listed = page.inner_text("#alerts")
        assert "regression" in listed and farm.timeline_commits[STEP_AT][:12] in listed


def test_run_page_shows_everything_and_downloads_the_exact_bytes(
    farm: Farm, browser: Any, screenshots: Path
) -> None:
    with opened(browser, f"{farm.url}/runs/{farm.rich_run}") as page:
        page.wait_for_function("window.perffarmRunCharts && window.perffarmRunCharts.length == 2")
        assert page.locator(".chart[data-series-index='0']").get_attribute("data-points") == "30"
        # Environment sections are collapsed groups that open on demand.
        cpu = page.locator("details.env", has_text="cpu")
        assert cpu.get_attribute("open") is None
        cpu.locator("summary").click()
        assert "Intel Xeon Gold 6338" in cpu.inner_text()
        assert "caches.l3" in cpu.inner_text()
        # Every sample, behind a disclosure per result.
        samples = page.locator("#results details").first
        samples.locator("summary").click()
        assert len(samples.locator(".samples").inner_text().split(",")) == 9
        build = page.locator("#build").inner_text()
        assert "configure" in build and "3.25" in build and "61.5" in build
        assert "per-query" in page.inner_text("main")
        shot(page, screenshots, "run.png")

        with page.expect_download() as info:
            page.click("#download-run")
        stored = httpx.get(f"{farm.url}/api/v1/runs/{farm.rich_run}").content
        assert Path(info.value.path()).read_bytes() == stored
        assert json.loads(stored)["id"] == farm.rich_run

        for name, expected in (("build/configure.log", LOG_BYTES), ("report.json", REPORT_BYTES)):
            with page.expect_download() as info:
                page.locator(".attachments a", has_text=name).click()
            assert Path(info.value.path()).read_bytes() == expected
        # The build step links its log.
        log_link = page.locator("#build a").get_attribute("href")
        assert httpx.get(farm.url + log_link).content == LOG_BYTES
    with opened(browser, f"{farm.url}/runs/{farm.rich_run}", PHONE) as page:
        _no_horizontal_scroll(page)
        shot(page, screenshots, "run-phone.png")


def test_runs_of_unapproved_machines_stay_hidden(farm: Farm) -> None:
    assert httpx.get(f"{farm.url}/runs/{farm.hidden_run}").status_code == 404
    assert httpx.get(f"{farm.url}/machines/hidden-01").status_code == 404
    assert httpx.get(f"{farm.url}/api/v1/views/runs/{farm.hidden_run}").status_code == 404
    people = httpx.get(f"{farm.url}/api/v1/views/people").json()
    assert "mallory" not in [o["owner"] for o in people["owners"]]
    assert all(r["machine"] != "hidden-01" for r in people["results"])


def _timeline_url(farm: Farm, **extra: str) -> str:
    return f"{farm.url}/timeline?{urlencode({**TIMELINE_QUERY, **extra})}"


def test_timeline_draws_every_point_with_hover_click_and_change_point(
    farm: Farm, browser: Any, screenshots: Path
) -> None:
    with opened(browser, _timeline_url(farm, branch="main")) as page:
        page.wait_for_selector("body[data-chart-ready]")
        assert page.get_attribute("#chart", "data-points") == str(TIMELINE_POINTS)
        assert page.evaluate("window.perffarmChart.data[0].length") == TIMELINE_POINTS

        # The change point found by the server is the first commit of the slower level.
        page.wait_for_selector("#changepoints[data-count]")
        assert page.get_attribute("#changepoints", "data-count") == "1"
        assert farm.timeline_commits[STEP_AT][:12] in page.inner_text("#changepoints")

        # Hover over point 45: the tooltip names its commit.
        box = page.evaluate(
            "(() => { const u = window.perffarmChart, r = u.over.getBoundingClientRect();"
            " return {x: r.left + u.valToPos(45, 'x'),"
            " y: r.top + u.valToPos(u.data[1][45], 'y')}; })()"
        )
        page.mouse.move(box["x"], box["y"])
        page.wait_for_selector("#tooltip:not([hidden])")
        assert farm.timeline_commits[45][:12] in page.inner_text("#tooltip")
        shot(page, screenshots, "timeline.png")

        # The chart is keyboard-operable: focus it, pan and zoom with keys.
        before = page.evaluate("window.perffarmChart.scales.x.max")
        page.focus("#chart")
        page.keyboard.press("+")
        after = page.evaluate("window.perffarmChart.scales.x.max")
        assert after < before

        # The text alternative holds the numbers.
        page.click("#numbers summary")
        page.wait_for_selector("#numbers-table tbody tr")
        assert page.locator("#numbers-table tbody tr").count() == TIMELINE_POINTS

        # A click opens the run of the point under the cursor.
        page.click("#reset")
        page.mouse.move(box["x"], box["y"])
        with page.expect_navigation():
            page.mouse.click(box["x"], box["y"])
        assert page.url.endswith(f"/runs/{farm.timeline_runs[45]}")


def test_timeline_overlays_branches_and_fits_a_phone(
    farm: Farm, browser: Any, screenshots: Path
) -> None:
    with opened(browser, _timeline_url(farm, x="time")) as page:
        page.wait_for_selector("body[data-chart-ready]")
        assert page.get_attribute("#chart", "data-lines") == "2"
        assert page.get_attribute("#chart", "data-points") == str(TIMELINE_POINTS + RELEASE_POINTS)
        page.wait_for_selector("#changepoints[data-count]")
        shot(page, screenshots, "timeline-branches.png")
    with opened(browser, _timeline_url(farm, branch="main"), PHONE) as page:
        page.wait_for_selector("body[data-chart-ready]")
        _no_horizontal_scroll(page)
        shot(page, screenshots, "timeline-phone.png")


def test_a_long_line_arrives_in_pieces_newest_first_and_ends_whole(
    farm: Farm, browser: Any
) -> None:
    # chunk=25: the 60 points of main come as 25 + 25 + 10, the newest first; the chart is
    # usable with the first piece and holds every point, in place, at the end.
    with opened(browser, _timeline_url(farm, branch="main", chunk="25")) as page:
        page.wait_for_selector("body[data-chart-ready]")
        page.wait_for_selector("#chart[data-complete]")
        assert page.get_attribute("#chart", "data-points") == str(TIMELINE_POINTS)
        xs = page.evaluate("window.perffarmChart.data[0]")
        assert xs == list(range(TIMELINE_POINTS))
        page.wait_for_selector("#changepoints[data-count='1']")
        assert farm.timeline_commits[STEP_AT][:12] in page.inner_text("#changepoints")
        box = page.evaluate(
            "(() => { const u = window.perffarmChart, r = u.over.getBoundingClientRect();"
            " return {x: r.left + u.valToPos(45, 'x'),"
            " y: r.top + u.valToPos(u.data[1][45], 'y')}; })()"
        )
        page.mouse.move(box["x"], box["y"])
        page.wait_for_selector("#tooltip:not([hidden])")
        assert farm.timeline_commits[45][:12] in page.inner_text("#tooltip")
    # Two lines overlaid, 7 points a piece: merged in time order once all are there.
    with opened(browser, _timeline_url(farm, x="time", chunk="7")) as page:
        page.wait_for_selector("#chart[data-complete]")
        assert page.get_attribute("#chart", "data-points") == str(TIMELINE_POINTS + RELEASE_POINTS)
        xs = page.evaluate("window.perffarmChart.data[0]")
        assert xs == sorted(xs) and len(xs) == TIMELINE_POINTS + RELEASE_POINTS


def test_timeline_twin_in_pieces_gives_every_point_once(farm: Farm) -> None:
    query = {**TIMELINE_QUERY, "branch": "main", "changepoints": "false"}
    whole = httpx.get(f"{farm.url}/api/v1/views/timeline", params=query).json()
    (line,) = whole["lines"]
    assert whole["next_cursor"] is None and line["offset"] == 0 and line["total"] == 60
    ids: list[int] = []
    cursor, offsets = None, []
    while True:
        params = {**query, "limit": 25, **({"before": cursor} if cursor else {})}
        piece = httpx.get(f"{farm.url}/api/v1/views/timeline", params=params).json()
        (part,) = piece["lines"]
        ids = part["id"] + ids
        offsets.append(part["offset"])
        cursor = piece["next_cursor"]
        if cursor is None:
            break
    assert ids == line["id"] and offsets == [35, 10, 0]
    bad = httpx.get(
        f"{farm.url}/api/v1/views/timeline", params={**query, "limit": 5, "before": "nonsense"}
    )
    assert bad.status_code == 422


def test_long_lines_come_without_commits_and_the_tooltip_asks_for_one(
    farm: Farm, browser: Any
) -> None:
    # commits=false is what lines longer than COMMITS_INLINE points get by default.
    with opened(browser, _timeline_url(farm, branch="main", commits="false")) as page:
        page.wait_for_selector("body[data-chart-ready]")
        assert page.evaluate("window.perffarmChart.data[0].length") == TIMELINE_POINTS
        box = page.evaluate(
            "(() => { const u = window.perffarmChart, r = u.over.getBoundingClientRect();"
            " return {x: r.left + u.valToPos(12, 'x'),"
            " y: r.top + u.valToPos(u.data[1][12], 'y')}; })()"
        )
        page.mouse.move(box["x"], box["y"])
        page.wait_for_selector(f"#tooltip .tt-commit:has-text('{farm.timeline_commits[12][:12]}')")
        page.wait_for_selector("#changepoints[data-count='1']")
        assert farm.timeline_commits[STEP_AT][:12] in page.inner_text("#changepoints")
    detail = httpx.get(
        f"{farm.url}/api/v1/views/timeline",
        params={**TIMELINE_QUERY, "branch": "main", "commits": "false", "changepoints": "false"},
    ).json()
    assert detail["lines"][0]["commit"] is None
    first = detail["lines"][0]["id"][0]
    point = httpx.get(f"{farm.url}/api/v1/views/results/{first}").json()
    assert point["commit"] == farm.timeline_commits[0] and point["machine"] == "lab-01"


def test_timeline_twin_is_columns_with_change_points(farm: Farm) -> None:
    answer = httpx.get(
        f"{farm.url}/api/v1/views/timeline", params={**TIMELINE_QUERY, "branch": "main"}
    ).json()
    (line,) = answer["lines"]
    assert answer["points"] == TIMELINE_POINTS == len(line["y"]) == len(line["commit"])
    assert line["t"] == sorted(line["t"])
    assert all(lo <= y <= hi for lo, y, hi in zip(line["lo"], line["y"], line["hi"], strict=True))
    (changes,) = answer["changepoints"]
    (change,) = changes["changepoints"]
    assert change["index"] == STEP_AT
    assert change["magnitude"] == pytest.approx(0.10, abs=0.02)
    # A point links to its run through its result id.
    redirect = httpx.get(f"{farm.url}/results/{line['id'][0]}", follow_redirects=True)
    assert redirect.url.path == f"/runs/{farm.timeline_runs[0]}"


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
        _no_horizontal_scroll(page)
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


def test_run_page_compares_with_the_previous_run(farm: Farm, browser: Any) -> None:
    with opened(browser, f"{farm.url}/runs/{farm.timeline_runs[STEP_AT]}") as page:
        page.click("text=Compare with the previous run")
        page.wait_for_url("**/compare?**")
        rows = page.locator("#comparison tbody tr")
        assert rows.count() == 1
        assert rows.first.get_attribute("data-verdict") == "slower"
        assert farm.timeline_runs[STEP_AT - 1][:8] in page.inner_text(".sides")


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


def test_machines_and_people_pages(farm: Farm, browser: Any, screenshots: Path) -> None:
    with opened(browser, farm.url + "/machines") as page:
        text = page.inner_text("main")
        assert "AMD EPYC 7543" in text and "32.0 GiB" in text and "hidden-01" not in text
        shot(page, screenshots, "machines.png")
        page.click("text=lab-01")
        page.wait_for_url("**/machines/lab-01")
    with opened(browser, farm.url + "/machines/lab-01") as page:
        text = page.inner_text("main")
        assert "fp-lab-01" in text and "alice" in text
        assert page.locator("table.data").nth(1).locator("tbody tr").count() == 80
        shot(page, screenshots, "machine.png")
    with opened(browser, farm.url + "/people") as page:
        owners = page.locator("table.data").first.inner_text()
        assert "alice" in owners and "bob" in owners and "mallory" not in owners
        shot(page, screenshots, "people.png")
    with opened(browser, farm.url + "/people/bob") as page:
        text = page.inner_text("main")
        assert "lab-02" in text and "lab-01" not in text
        shot(page, screenshots, "person.png")
    with opened(browser, farm.url + "/machines", PHONE) as page:
        _no_horizontal_scroll(page)


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
