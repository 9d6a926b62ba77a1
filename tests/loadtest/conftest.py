"""Load-test fixtures: real servers in subprocesses, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import free_port

TOKEN = "loadtest-token"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "lt.db")
    return request.getfixturevalue("postgres_url")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "perffarm.commands", "loadtest", *args]


class LoadTestServer:
    """`perffarm loadtest server` on a free port, configured through the environment."""

    def __init__(self, tmp: Path, database: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.results = tmp / "results"
        self.database = database
        self.env = env
        self.log = tmp / f"server-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> LoadTestServer:
        env = dict(
            os.environ,
            PORT=str(self.port),
            TEST_RESULTS_LOCATION=str(self.results),
            PERFFARM_LOADTEST_TOKEN=TOKEN,
            **self.env,
        )
        self.process = subprocess.Popen(
            cli("server", "--host", "127.0.0.1", "--database", self.database),
            env=env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/status", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(self.log.read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None


@pytest.fixture
def lt_server(tmp_path: Path, database: str) -> Iterator[LoadTestServer]:
    server = LoadTestServer(tmp_path, database).start()
    yield server
    server.stop()


class Lighthouse:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.process = subprocess.Popen(cli("lighthouse", "--port", str(self.port)))
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("the lighthouse did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def lighthouse() -> Iterator[Lighthouse]:
    relay = Lighthouse()
    yield relay
    relay.stop()
