"""Fixtures of the gRPC tests: a database of each kind, a real server with gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.grpc.support import GrpcServerProcess


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "farm.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def server(database: str, tmp_path: Path) -> Iterator[GrpcServerProcess]:
    with GrpcServerProcess(database, tmp_path) as running:
        yield running


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[GrpcServerProcess]:
    with GrpcServerProcess(str(tmp_path / "farm.db"), tmp_path) as running:
        yield running
