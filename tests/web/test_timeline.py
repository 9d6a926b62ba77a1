"""The timeline (views/timeline.py): the chart in headless Chromium, and its data twin in
pieces, with and without commits and change points."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.web.support import (
    PHONE,
    RELEASE_POINTS,
    STEP_AT,
    TIMELINE_POINTS,
    Farm,
    no_horizontal_scroll,
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
        no_horizontal_scroll(page)
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
