"""The load-test pages: a running test's charts grow as datapoints arrive; a finished one
shows its verdict and downloads the whole test."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.support import ADMIN_HEADERS, Farm, opened, shot

pytestmark = pytest.mark.browser


def _batch(sequence: int, start_ms: int, seconds: int, peers: int = 3) -> dict[str, Any]:
    return {
        "worker": "worker-1",
        "incarnation": "inc-1",
        "sequence": sequence,
        "datapoints": [
            {
                "peerId": f"peer-{p}",
                "timestamp": start_ms + 1000 * s + 10 * p,
                "metrics": {"sent": 10 + p, "received": 9 + p},
            }
            for s in range(seconds)
            for p in range(peers)
        ],
    }


def test_live_load_test_grows_then_shows_its_verdict(
    farm: Farm, browser: Any, screenshots: Path
) -> None:
    with httpx.Client(base_url=farm.url, headers=ADMIN_HEADERS, timeout=30) as client:
        created = client.post(
            "/api/v1/loadtests",
            json={
                "id": "web-live",
                "started": True,
                "description": "dashboard test",
                "thresholds": {"received": ["count > 0"]},
            },
        )
        assert created.status_code == 201, created.text
        start = int(time.time() * 1000) - 60_000
        assert client.post(
            "/api/v1/loadtests/web-live/datapoints", json=_batch(0, start, 5)
        ).is_success

        with opened(browser, farm.url + "/loadtests/web-live") as page:
            page.wait_for_selector("#lt-charts[data-datapoints='15']")
            sent = page.locator(".chart[data-metric='sent']")
            assert sent.get_attribute("data-points") == "5"
            assert page.evaluate("window.perffarmLoadCharts.sent.u.data[1][0]") == 10 + 11 + 12
            added = client.post(
                "/api/v1/loadtests/web-live/datapoints", json=_batch(1, start + 5000, 4)
            )
            assert added.is_success
            # The page asks again by itself: the chart grows without a reload.
            page.wait_for_selector(".chart[data-metric='sent'][data-points='9']")
            assert page.get_attribute("#lt-charts", "data-datapoints") == "27"
            assert page.locator(".chart[data-metric='__peers']").get_attribute("data-points") == "9"
            shot(page, screenshots, "loadtest-live.png")

            assert client.post("/api/v1/loadtests/web-live/finish").is_success
            page.wait_for_selector("#verdict", timeout=15_000)
            assert page.inner_text("#verdict") == "passed"
            assert "count > 0" in page.inner_text("#thresholds")
            with page.expect_download() as info:
                page.click("#download-test")
            whole = json.loads(Path(info.value.path()).read_bytes())
            assert len(whole["dataPoints"]) == 27
            shot(page, screenshots, "loadtest-finished.png")

        with opened(browser, farm.url + "/loadtests") as page:
            row = page.locator("tr", has_text="web-live")
            assert "finished" in row.inner_text() and "passed" in row.inner_text()
            shot(page, screenshots, "loadtests.png")
        twin = client.get("/api/v1/views/loadtests/web-live").json()
        assert twin["test"]["status"] == "finished" and twin["summary"]["verdict"] == "passed"
