"""Fixtures shared by every test folder.

PostgreSQL tests use the server at 127.0.0.1:5432 (trust auth). Each test gets a database
of its own, created here and dropped afterwards. Without that server they skip, unless
PERFFARM_REQUIRE_POSTGRES=1 (set by .ci/run), which turns the skip into a failure (the
one skip helper, tests/support.py).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support import unavailable

POSTGRES_ADMIN_URL = os.environ.get(
    "PERFFARM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
# Tables printed by the commands under test must not fold, whatever width the test worker
# (or a CI log) would give them; set before perffarm's console is created.
os.environ["COLUMNS"] = "200"


def _postgres_unavailable(reason: str) -> NoReturn:
    unavailable(f"PostgreSQL is not available: {reason}", needs="postgres")


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its plain ``postgresql://`` URL), dropped after."""
    try:
        import psycopg
    except ImportError:
        _postgres_unavailable("psycopg is not installed")
    name = f"perffarm_test_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _postgres_unavailable(str(exc).strip().splitlines()[0])
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL of a new, empty PostgreSQL database, dropped after the test."""
    with new_postgres_database() as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Path of a fresh local store in the test's temporary directory."""
    return tmp_path / "store.db"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's store, config or credentials."""
    monkeypatch.setenv("PERFFARM_STORE", str(tmp_path / "default-store.db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
