"""One real server with known runs and one headless Chromium for the dashboard's browser
tests, each on SQLite and on PostgreSQL; and the real app in-process (TestClient) for the
tests of the pages and their twins that need no browser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.server.settings import Settings
from tests.conftest import new_postgres_database
from tests.server.support import ADMIN, ServerProcess
from tests.support import unavailable
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
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _missing(reason: str) -> NoReturn:
    unavailable(reason)


@contextmanager
def scratch_database(kind: str, folder: Path) -> Iterator[str]:
    """A new, empty database for a whole module or session (``postgres_url`` is one
    test's): a SQLite file in ``folder``, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield str(folder / "farm.db")
        return
    with new_postgres_database() as url:
        yield url


@pytest.fixture(scope="session", params=DATABASES)
def farm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    tmp = tmp_path_factory.mktemp("web-farm")
    with scratch_database(request.param, tmp) as database, ServerProcess(database, tmp) as server:
        yield populate(server.url)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for one test."""
    with scratch_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    """The real app on a fresh database, in this process."""
    app = create_app(Settings(database=database, admin_token=ADMIN))
    with TestClient(app) as test_client:
        yield test_client


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
