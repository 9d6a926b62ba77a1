"""The machines pages (views/machines.py) in headless Chromium against a real server process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.support import (
    PHONE,
    Farm,
    no_horizontal_scroll,
    opened,
    shot,
)

pytestmark = pytest.mark.browser


def test_machines_pages(farm: Farm, browser: Any, screenshots: Path) -> None:
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
    with opened(browser, farm.url + "/machines", PHONE) as page:
        no_horizontal_scroll(page)
