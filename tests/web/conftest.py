"""One real server with known runs and one headless Chromium for all dashboard tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from tests.server.support import ServerProcess
from tests.web.support import Farm, populate

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_TOOLS = os.environ.get("PERFFARM_REQUIRE_TOOLS") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def _missing(reason: str) -> None:
    if REQUIRE_TOOLS:
        pytest.fail(f"{reason} (PERFFARM_REQUIRE_TOOLS=1 makes a missing tool a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    tmp = tmp_path_factory.mktemp("web-farm")
    with ServerProcess(str(tmp / "farm.db"), tmp) as server:
        yield populate(server.url)


# Module scope: a live sync Playwright keeps an event loop running in this thread, which
# would break any later test of the same worker that calls asyncio.run or starts Playwright.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        _missing(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
