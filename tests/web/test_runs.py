"""A run's page (views/runs.py): everything it shows, the exact download, what stays hidden,
and the comparison with the run before it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.support import (
    LOG_BYTES,
    PHONE,
    REPORT_BYTES,
    STEP_AT,
    Farm,
    no_horizontal_scroll,
    opened,
    shot,
)

pytestmark = pytest.mark.browser


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
        no_horizontal_scroll(page)
        shot(page, screenshots, "run-phone.png")


def test_runs_of_unapproved_machines_stay_hidden(farm: Farm) -> None:
    assert httpx.get(f"{farm.url}/runs/{farm.hidden_run}").status_code == 404
    assert httpx.get(f"{farm.url}/machines/hidden-01").status_code == 404
    assert httpx.get(f"{farm.url}/api/v1/views/runs/{farm.hidden_run}").status_code == 404
    people = httpx.get(f"{farm.url}/api/v1/views/people").json()
    assert "mallory" not in [o["owner"] for o in people["owners"]]
    assert all(r["machine"] != "hidden-01" for r in people["results"])


def test_run_page_compares_with_the_previous_run(farm: Farm, browser: Any) -> None:
    with opened(browser, f"{farm.url}/runs/{farm.timeline_runs[STEP_AT]}") as page:
        page.click("text=Compare with the previous run")
        page.wait_for_url("**/compare?**")
        rows = page.locator("#comparison tbody tr")
        assert rows.count() == 1
        assert rows.first.get_attribute("data-verdict") == "slower"
        assert farm.timeline_runs[STEP_AT - 1][:8] in page.inner_text(".sides")
