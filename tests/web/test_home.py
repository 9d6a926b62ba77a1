"""The home page (views/home.py) in headless Chromium against a real server process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.support import (
    PHONE,
    STEP_AT,
    TIMELINE_POINTS,
    Farm,
    no_horizontal_scroll,
    opened,
    shot,
)

pytestmark = pytest.mark.browser


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
        no_horizontal_scroll(page)
        shot(page, screenshots, "home-phone.png")


def test_home_shows_the_alert_raised_by_the_step(farm: Farm, browser: Any) -> None:
    deadline = time.monotonic() + 60
    while True:
        alerts = httpx.get(f"{farm.url}/api/v1/views/home").json()["alerts"]
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
