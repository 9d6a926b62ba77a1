"""`perffarm loadtest ...`: the results server, the reference relay, workers, a local test.

Runnable on its own as ``python -m perffarm.loadtest.cli`` (the worker processes of
``--processes`` and ``loadtest local`` are started that way).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

from perffarm.console import UsageError, UserError, console, err_console, print_json, require_extra

loadtest_app = typer.Typer(
    name="loadtest",
    help="Distributed load tests: simulated peers, a results server, a reference relay.\n\n"
    "Example: perffarm loadtest local --peers 50 --duration 30",
    no_args_is_help=True,
)

DEFAULT_RESULTS = "~/peer-performance-tests"


def _need(extra: str, *modules: str) -> None:
    for module in modules:
        require_extra(module, extra)


@loadtest_app.command("server")
def server_command(
    port: int = typer.Option(9904, "--port", envvar="PORT", help="Port to listen on."),
    host: str = typer.Option("0.0.0.0", "--host", help="Address to listen on."),
    results: str = typer.Option(
        DEFAULT_RESULTS,
        "--results-location",
        envvar="TEST_RESULTS_LOCATION",
        help="Folder where each finished test is written as ID.json.",
    ),
    stats_server_url: str = typer.Option(
        "",
        "--stats-server-url",
        envvar="STATS_SERVER_URL",
        help="InfluxDB to relay datapoints to (e.g. http://127.0.0.1:8086/); empty: off.",
    ),
    influx_db: str = typer.Option("comms", "--influx-db", help="InfluxDB database name."),
    database: str | None = typer.Option(
        None,
        "--database",
        "-d",
        envvar="PERFFARM_DATABASE",
        help="SQLite file or postgresql:// URL (default: loadtests.db in the results folder).",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="PERFFARM_LOADTEST_TOKEN",
        help="Token workers send (X-Perffarm-Loadtest-Token); generated and printed if absent.",
    ),
    compat_auth: str = typer.Option(
        "open",
        "--compat-auth",
        help="The original harness's routes: 'open' (as before) or 'token' (need the token).",
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Run the load-test results server, compatible with the original harness's clients.

    Example: PORT=9904 TEST_RESULTS_LOCATION=./tests perffarm loadtest server
    """
    _need("server", "fastapi", "uvicorn", "sqlalchemy")
    import uvicorn

    from perffarm.server.cli import _check_port_free, _open_and_migrate
    from perffarm.server.settings import COMPAT_AUTH_MODES, LoadTestSettings, Settings
    from perffarm.server.store.server_settings import ensure_admin_token

    if compat_auth not in COMPAT_AUTH_MODES:
        raise UsageError(f"--compat-auth {compat_auth!r}: choose open or token")
    folder = Path(results).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the results folder {folder}: {exc.strerror}") from None
    database = database or str(folder / "loadtests.db")
    if not token:
        token = secrets.token_urlsafe(24)
        err_console.print(
            "[bold]load-test token for workers (--token / PERFFARM_LOADTEST_TOKEN):[/]"
        )
        console.print(token)
    settings = Settings(database=database)
    engine, _, _ = _open_and_migrate(database)
    _check_port_free(host, port)
    ensure_admin_token(engine, None)
    engine.dispose()
    loadtest = LoadTestSettings(
        results_location=folder,
        compat_auth=compat_auth,
        token=token,
        influx_url=stats_server_url.strip() or None,
        influx_db=influx_db,
    )
    os.environ.update(settings.to_env())
    os.environ.update(loadtest.to_env())
    err_console.print(f"==> load-test results server listening on {host}:{port}")
    uvicorn.run(
        "perffarm.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        timeout_keep_alive=30,
    )


@loadtest_app.command("lighthouse")
def lighthouse_command(
    port: int = typer.Option(9000, "--port", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
) -> None:
    """Run the reference WebSocket relay: peers in one layer and room hear each other.

    Example: perffarm loadtest lighthouse --port 9000
    """
    _need("loadtest", "websockets")
    import asyncio

    from perffarm.loadtest.lighthouse import serve

    try:
        asyncio.run(serve(host, port))
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _worker_args(
    server: str, test_id: str, duration: float, target: str, transport: str, routine: str
) -> list[str]:
    return [
        "--server", server, "--test-id", test_id, "--duration", str(duration),
        "--target", target, "--transport", transport, "--routine", routine,
    ]  # fmt: skip


@loadtest_app.command("worker")
def worker_command(
    server: str = typer.Option(
        ..., "--server", envvar="RESULTS_SERVER_URL", help="Results server URL."
    ),
    test_id: str = typer.Option(..., "--test-id", envvar="TEST_ID", help="The test to join."),
    peers: int = typer.Option(10, "--peers", envvar="PEERS_COUNT", min=1, help="Peers to run."),
    duration: float = typer.Option(
        180, "--duration", envvar="TEST_DURATION", min=0.1, help="Seconds peers run."
    ),
    target: str = typer.Option(
        "ws://127.0.0.1:9000/", "--target", envvar="LIGHTHOUSE_URL", help="System under test."
    ),
    transport: str = typer.Option("websocket", "--transport", help="Transport plug-in."),
    routine: str = typer.Option("default", "--routine", help="Routine plug-in."),
    processes: int = typer.Option(
        1, "--processes", min=1, help="Worker processes to split peers over."
    ),
    name: str | None = typer.Option(None, "--name", help="Worker name (default: host-pid)."),
    token: str | None = typer.Option(
        None, "--token", envvar="PERFFARM_LOADTEST_TOKEN", help="The server's load-test token."
    ),
    ack_log: Path | None = typer.Option(
        None, "--ack-log", help="Append each acknowledged batch here."
    ),
) -> None:
    """Wait until the test starts, run the peers for the duration, report their stats.

    Example: perffarm loadtest worker --server http://127.0.0.1:9904 --test-id t1 --peers 500
    """
    _need("loadtest", "websockets")
    from perffarm.loadtest.worker import WorkerConfig, WorkerError, run_worker

    base = name or f"{os.uname().nodename}-{os.getpid()}"
    if processes > 1:
        args = _worker_args(server, test_id, duration, target, transport, routine)
        children = []
        for index in range(processes):
            share = peers // processes + (1 if index < peers % processes else 0)
            if share == 0:
                continue
            extra = ["--peers", str(share), "--name", f"{base}-{index}"]
            if token:
                extra += ["--token", token]
            if ack_log:
                extra += ["--ack-log", f"{ack_log}.{index}"]
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "perffarm.loadtest.cli", "worker", *args, *extra]
                )
            )

        def forward(signum: int, _frame: object) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        codes = [child.wait() for child in children]
        if any(codes):
            raise UserError(f"{sum(1 for c in codes if c)} of {len(codes)} worker processes failed")
        return
    config = WorkerConfig(
        server=server,
        test_id=test_id,
        peers=peers,
        duration=duration,
        target=target,
        transport=transport,
        routine=routine,
        name=base,
        token=token,
        ack_log=ack_log,
    )
    try:
        acknowledged = run_worker(config)
    except (WorkerError, LookupError, ValueError) as exc:
        raise UserError(str(exc)) from None
    err_console.print(f"worker {base}: {acknowledged} datapoints acknowledged")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    import httpx

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


def _wait_port(port: int, process: subprocess.Popen, what: str, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"the {what} exited at start (code {process.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise UserError(f"the {what} did not start within {timeout:.0f} s")


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def print_summary(summary: dict) -> None:
    from rich.table import Table

    table = Table(title="load test summary", show_lines=False)
    for column in ("metric", "sum", "p50", "p95", "p99", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    shown = [m for m in summary["metrics"] if not m.endswith(("Total", "TotalBytes"))]
    for metric in shown:
        f = summary["metrics"][metric]
        table.add_row(metric, *(f"{f[k]:g}" for k in ("sum", "p50", "p95", "p99", "max")))
    console.print(table)
    lat = summary["latency_ms"]
    if lat["count"]:
        console.print(
            f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}"
            f"  ({lat['count']} messages)"
        )
    for w in summary["workers"]:
        lag = w["lag_ms"]
        console.print(
            f"worker {w['name']}: {w['status']}, {w['datapoints']} datapoints, {w['peers']} peers, "
            f"tick lag p99 {lag['p99']} ms, CPU avg {w['cpu_percent_avg']}%"
        )
    if summary["missing_workers"]:
        console.print(f"[bold red]missing workers:[/] {', '.join(summary['missing_workers'])}")
    for t in summary["thresholds"]:
        mark = "[green]pass[/]" if t["passed"] else "[bold red]FAIL[/]"
        console.print(f"{mark} {t['metric']}: {t['expression']} (observed {t['observed']})")
    if summary.get("aborted"):
        a = summary["aborted"]
        console.print(
            f"[bold red]aborted during the run:[/] {a['threshold']} (observed {a['observed']})"
        )
    verdict = summary["verdict"]
    console.print(
        f"verdict: [bold]{verdict}[/] "
        f"({summary['datapoints']} datapoints, {summary['peers']} peers)"
    )


def _watch(
    workers: subprocess.Popen, url: str, test_id: str, timeout: float, abort_on_fail: bool
) -> str | None:
    """Wait for the workers; with ``abort_on_fail``, answer the first settled failure."""
    import httpx

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
    _stop(workers)
    return None


@loadtest_app.command("local")
def local_command(
    peers: int = typer.Option(50, "--peers", min=1, help="Peers in all."),
    duration: float = typer.Option(30, "--duration", min=1, help="Seconds the peers run."),
    processes: int = typer.Option(1, "--processes", min=1, help="Worker processes."),
    threshold: list[str] = typer.Option(
        [],
        "--threshold",
        help="METRIC=EXPRESSION, repeatable, e.g. 'receivedPerSecond=p(95) > 50'. "
        "Default: received=count > 0 and duplicate=count == 0.",
    ),
    results: Path | None = typer.Option(None, "--results-location", help="Keep ID.json here."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    abort_on_fail: bool = typer.Option(
        False,
        "--abort-on-fail",
        help="Check the thresholds every 5 s and stop at the first failure that cannot "
        "recover (a counter's count, a max or a min).",
    ),
) -> None:
    """Run a whole test on this machine: server, relay, workers; print the summary.

    The exit code is 1 when a threshold fails.

    Example: perffarm loadtest local --peers 50 --duration 30 --threshold 'duplicate=count == 0'
    """
    _need("loadtest", "websockets")
    _need("server", "fastapi", "uvicorn", "sqlalchemy")
    import httpx

    from perffarm.loadtest.thresholds import ThresholdError, parse_option

    wanted: dict[str, list[str]] = {}
    try:
        for text in threshold or ["received=count > 0", "duplicate=count == 0"]:
            metric, expression = parse_option(text)
            wanted.setdefault(metric, []).append(expression)
    except ThresholdError as exc:
        raise UsageError(str(exc)) from None
    token = secrets.token_urlsafe(16)
    me = [sys.executable, "-m", "perffarm.loadtest.cli"]
    server = lighthouse = workers = None
    with tempfile.TemporaryDirectory(prefix="perffarm-loadtest-") as tmp:
        folder = results or Path(tmp) / "results"
        server_port, relay_port = _free_port(), _free_port()
        url = f"http://127.0.0.1:{server_port}"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        try:
            server = subprocess.Popen(
                [*me, "server", "--host", "127.0.0.1", "--port", str(server_port),
                 "--results-location", str(folder), "--database", str(Path(tmp) / "lt.db"),
                 "--token", token, "--stats-server-url", ""],
                **quiet,
            )  # fmt: skip
            lighthouse = subprocess.Popen([*me, "lighthouse", "--port", str(relay_port)], **quiet)
            _wait_http(f"{url}/status", server, "results server")
            _wait_port(relay_port, lighthouse, "relay")
            headers = {"X-Perffarm-Loadtest-Token": token}
            created = httpx.post(
                f"{url}/api/v1/loadtests",
                json={"duration": duration, "peers": peers, "thresholds": wanted},
                headers=headers,
            )
            created.raise_for_status()
            test_id = created.json()["id"]
            relay = f"ws://127.0.0.1:{relay_port}/"
            args = _worker_args(url, test_id, duration, relay, "websocket", "default")
            args += ["--peers", str(peers), "--processes", str(processes), "--token", token]
            workers = subprocess.Popen(
                [*me, "worker", *args, "--name", "local"], stdout=subprocess.DEVNULL
            )
            httpx.post(
                f"{url}/api/v1/loadtests/{test_id}/start", headers=headers
            ).raise_for_status()
            err_console.print(f"test {test_id}: {peers} peers for {duration:g} s")
            aborted = _watch(workers, url, test_id, duration + 120, abort_on_fail)
            if aborted:
                err_console.print(f"aborting: {aborted} failed during the run")
                _stop(workers)
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
                summary = kept.json()
            else:
                finished.raise_for_status()
                summary = finished.json()["summary"]
        except httpx.HTTPError as exc:
            raise UserError(f"the local results server failed: {exc}") from None
        finally:
            for process in (workers, lighthouse, server):
                _stop(process)
    if as_json:
        print_json({"id": test_id, **summary})
    else:
        print_summary(summary)
    if summary["verdict"] != "passed":
        raise UserError("thresholds failed", exit_code=1)


@loadtest_app.command("summary")
def summary_command(
    test_id: str = typer.Argument(..., help="The test's id."),
    server: str = typer.Option("http://127.0.0.1:9904", "--server", envvar="RESULTS_SERVER_URL"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print a test's summary (the kept one when finished, the figures so far otherwise).

    Example: perffarm loadtest summary 1732000000000-abcdef --server http://127.0.0.1:9904
    """
    import httpx

    try:
        answer = httpx.get(f"{server.rstrip('/')}/api/v1/loadtests/{test_id}/summary", timeout=60)
    except httpx.HTTPError as exc:
        raise UserError(f"cannot reach {server}: {exc}") from None
    if answer.status_code == 404:
        raise UserError(f"no test {test_id!r} on {server}")
    answer.raise_for_status()
    if as_json:
        print_json(answer.json())
    else:
        print_summary(answer.json())


def register(app: typer.Typer) -> None:
    """Add `perffarm loadtest ...` to the `perffarm` app."""
    app.add_typer(loadtest_app)


def main(argv: list[str] | None = None) -> int:
    """The same error handling as `perffarm`, for ``python -m perffarm.loadtest.cli``."""
    from perffarm import cli as root

    if "loadtest" not in {g.name for g in root.app.registered_groups}:
        register(root.app)
    return root.main(["loadtest", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
