"""A whole load test on this machine (`perffarm loadtest local`): the results server, the
reference relay and the workers as child processes, then the summary.

The children are perffarm's own commands; the caller says how to start them (``command``,
e.g. ``[sys.executable, "-m", "perffarm.commands", "loadtest"]``), so this module does not
import the command line. Failures are user errors: one line, no traceback.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from perffarm.console import UserError, err_console


@dataclass(frozen=True)
class LocalTest:
    """What to run: peers in all, for how long, over how many worker processes, and the
    thresholds (metric -> expressions, as the server's API takes them)."""

    peers: int
    duration: float
    thresholds: dict[str, list[str]]
    processes: int = 1
    results: Path | None = None
    abort_on_fail: bool = False


def worker_args(
    server: str, test_id: str, duration: float, target: str, transport: str, routine: str
) -> list[str]:
    """The options of `perffarm loadtest worker` that every worker of a test shares."""
    return [
        "--server", server, "--test-id", test_id, "--duration", str(duration),
        "--target", target, "--transport", transport, "--routine", routine,
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    """Wait until ``url`` answers at all; fail when ``process`` exits or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"the {what} exited at start (code {process.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise UserError(f"the {what} did not start within {timeout:.0f} s")


def wait_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    """Wait until something listens on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"the {what} exited at start (code {process.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise UserError(f"the {what} did not start within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 15 s; nothing for a process that already ended."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def watch(
    workers: subprocess.Popen[bytes], url: str, test_id: str, timeout: float, abort_on_fail: bool
) -> str | None:
    """Wait for the workers; with ``abort_on_fail``, answer the first settled failure."""
    from perffarm.loadtest import thresholds as thr

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            workers.wait(timeout=5)
            return None
        except subprocess.TimeoutExpired:
            pass
        if not abort_on_fail:
            continue
        summary = httpx.get(f"{url}/api/v1/loadtests/{test_id}/summary", timeout=60).json()
        for t in summary["thresholds"]:
            outcome = thr.Outcome(
                thr.parse(t["metric"], t["expression"]), t["observed"], t["passed"]
            )
            if thr.settled(outcome):
                return f"{t['metric']}: {t['expression']} (observed {t['observed']})"
    stop(workers)
    return None


def run_local_test(test: LocalTest, command: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Run ``test`` with children started as ``[*command, "server" | "lighthouse" | "worker",
    ...]``; the test's id and its summary, once every child has stopped."""
    token = secrets.token_urlsafe(16)
    me = list(command)
    server = lighthouse = workers = None
    with tempfile.TemporaryDirectory(prefix="perffarm-loadtest-") as tmp:
        folder = test.results or Path(tmp) / "results"
        server_port, relay_port = free_port(), free_port()
        url = f"http://127.0.0.1:{server_port}"
        try:
            server = subprocess.Popen(
                [*me, "server", "--host", "127.0.0.1", "--port", str(server_port),
                 "--results-location", str(folder), "--database", str(Path(tmp) / "lt.db"),
                 "--token", token, "--stats-server-url", ""],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            lighthouse = subprocess.Popen(
                [*me, "lighthouse", "--port", str(relay_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_http(f"{url}/status", server, "results server")
            wait_port(relay_port, lighthouse, "relay")
            headers = {"X-Perffarm-Loadtest-Token": token}
            created = httpx.post(
                f"{url}/api/v1/loadtests",
                json={
                    "duration": test.duration,
                    "peers": test.peers,
                    "thresholds": test.thresholds,
                },
                headers=headers,
            )
            created.raise_for_status()
            test_id: str = created.json()["id"]
            relay = f"ws://127.0.0.1:{relay_port}/"
            args = worker_args(url, test_id, test.duration, relay, "websocket", "default")
            args += ["--peers", str(test.peers), "--processes", str(test.processes)]
            args += ["--token", token]
            workers = subprocess.Popen(
                [*me, "worker", *args, "--name", "local"], stdout=subprocess.DEVNULL
            )
            httpx.post(
                f"{url}/api/v1/loadtests/{test_id}/start", headers=headers
            ).raise_for_status()
            err_console.print(f"test {test_id}: {test.peers} peers for {test.duration:g} s")
            aborted = watch(workers, url, test_id, test.duration + 120, test.abort_on_fail)
            if aborted:
                err_console.print(f"aborting: {aborted} failed during the run")
                stop(workers)
            elif workers.returncode:
                # The workers said why on stderr; a summary of nothing would only mislead.
                raise UserError("the workers failed (see the message above); no summary")
            finished = httpx.post(
                f"{url}/api/v1/loadtests/{test_id}/finish", headers=headers, timeout=120
            )
            if finished.status_code == 409:
                # Finished on the server already: an abortOnFail threshold failed.
                kept = httpx.get(f"{url}/api/v1/loadtests/{test_id}/summary", timeout=120)
                kept.raise_for_status()
                summary: dict[str, Any] = kept.json()
            else:
                finished.raise_for_status()
                summary = finished.json()["summary"]
        except httpx.HTTPError as exc:
            raise UserError(f"the local results server failed: {exc}") from None
        finally:
            for process in (workers, lighthouse, server):
                stop(process)
    return test_id, summary
