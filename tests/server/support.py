"""Helpers for server and end-to-end tests: run documents, and a real server process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from perffarm.model import (
    Attachment,
    Environment,
    Result,
    RunDocument,
    Source,
    Summary,
)
from tests.support import free_port

ADMIN = "test-admin-token"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_run(
    *,
    machine: str = "lab-01",
    project: str = "demo",
    results: int = 3,
    branch: str | None = "main",
    commit: str | None = None,
    hour: int = 0,
    fingerprint: str = "fp-a",
    tag: str | None = None,
    attachments: list[Attachment] | None = None,
    sections: dict | None = None,
) -> RunDocument:
    """A run document whose commit time and start time are ``hour`` hours after T0."""
    at = T0 + timedelta(hours=hour)
    return RunDocument(
        project=project,
        machine=machine,
        tag=tag,
        started_at=at + timedelta(minutes=5),
        finished_at=at + timedelta(minutes=6),
        source=Source(
            repository="https://example.org/demo.git",
            branch=branch,
            commit=commit or f"{hour:040x}",
            commit_time=at if branch else None,
        ),
        environment=Environment(
            sections=sections or {"cpu": {"model": "Test CPU", "cores": 2}},
            fingerprint=fingerprint,
            fingerprint_keys=["cpu.model"],
        ),
        results=[
            Result(
                benchmark="bench",
                params={"clients": index},
                metric="latency",
                unit="s",
                samples=[1.0 + hour, 2.0 + hour, 3.0 + hour],
                summary=Summary(
                    n=3,
                    mean=2.0 + hour,
                    median=2.0 + hour,
                    stdev=1.0,
                    min=1.0 + hour,
                    max=3.0 + hour,
                ),
            )
            for index in range(results)
        ],
        attachments=attachments or [],
    )


def wait_healthy(url: str, process: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stderr.read()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not become healthy")


class ServerProcess:
    """`perffarm server` in a subprocess on a free local port: a real socket, a real process."""

    def __init__(
        self, database: str, tmp: Path, *, port: int | None = None, extra: list[str] | None = None
    ) -> None:
        self.database = database
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"server-{self.port}-{time.monotonic_ns()}.log"
        self.extra = extra or []
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        env = dict(os.environ, PERFFARM_ADMIN_TOKEN=ADMIN)
        self._log_handle = self.log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perffarm.commands",
                "server",
                "--address",
                f"127.0.0.1:{self.port}",
                "--database",
                self.database,
                "--log-level",
                "warning",
                *self.extra,
            ],
            env=env,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(self.url, None, timeout=60)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"server did not start: {self.log.read_text()}") from None
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if hasattr(self, "_log_handle"):
            self._log_handle.close()

    def kill(self) -> None:
        """Stop at once, as a crash or a power cut would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
