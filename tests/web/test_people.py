"""The people pages (views/people.py) in headless Chromium against a real server process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.support import (
    Farm,
    opened,
    shot,
)

pytestmark = pytest.mark.browser


def test_people_pages(farm: Farm, browser: Any, screenshots: Path) -> None:
    with opened(browser, farm.url + "/people") as page:
        owners = page.locator("table.data").first.inner_text()
        assert "alice" in owners and "bob" in owners and "mallory" not in owners
        shot(page, screenshots, "people.png")
    with opened(browser, farm.url + "/people/bob") as page:
        text = page.inner_text("main")
        assert "lab-02" in text and "lab-01" not in text
        shot(page, screenshots, "person.png")
