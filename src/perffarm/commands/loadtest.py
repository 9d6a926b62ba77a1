"""`perffarm loadtest server|lighthouse|worker|local|summary|token`: distributed load tests.

The worker processes of ``--processes`` and of ``loadtest local`` are started as
``python -m perffarm.commands loadtest ...`` (see CHILD_COMMAND).
"""

import sys
from pathlib import Path

import typer

from perffarm.commands._shared import ADMIN_HELP, CREDS_HELP, acting_as, group

app = group(
    "loadtest",
    "Distributed load tests: simulated peers, a results server, a reference relay.\n\n"
    "Example: perffarm loadtest local --peers 50 --duration 30",
)

DEFAULT_RESULTS = "~/peer-performance-tests"
# How a load test starts its own children: this command group in a fresh interpreter.
CHILD_COMMAND = (sys.executable, "-m", "perffarm.commands", "loadtest")


def _need(extra: str, *modules: str) -> None:
    from perffarm.console import require_extra

    for module in modules:
        require_extra(module, extra)


@app.command("server")
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
    import os
    import secrets

    import uvicorn

    from perffarm.commands._serving import check_port_free, open_and_migrate
    from perffarm.console import UsageError, UserError, console, err_console
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
            "load-test token for workers (--token / PERFFARM_LOADTEST_TOKEN):", style="bold"
        )
        console.print(token)
    settings = Settings(database=database)
    engine, _, _ = open_and_migrate(database)
    check_port_free(host, port, flag="--port")
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


@app.command("lighthouse")
def lighthouse_command(
    port: int = typer.Option(9000, "--port", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
) -> None:
    """Run the reference WebSocket relay: peers in one layer and room hear each other.

    Example: perffarm loadtest lighthouse --port 9000
    """
    _need("loadtest", "websockets")
    import asyncio

    from perffarm.console import UserError
    from perffarm.loadtest.lighthouse import serve

    try:
        asyncio.run(serve(host, port))
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@app.command("worker")
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
    import os

    from perffarm.console import UserError, err_console
    from perffarm.loadtest.local import worker_args
    from perffarm.loadtest.worker import WorkerConfig, WorkerError, run_worker

    base = name or f"{os.uname().nodename}-{os.getpid()}"
    if processes > 1:
        import signal
        import subprocess

        args = worker_args(server, test_id, duration, target, transport, routine)
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
            children.append(subprocess.Popen([*CHILD_COMMAND, "worker", *args, *extra]))

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


@app.command("local")
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
    from perffarm.console import UsageError, UserError, print_json
    from perffarm.loadtest.local import LocalTest, run_local_test
    from perffarm.loadtest.report import print_summary
    from perffarm.loadtest.thresholds import ThresholdError, parse_option

    wanted: dict[str, list[str]] = {}
    try:
        for text in threshold or ["received=count > 0", "duplicate=count == 0"]:
            metric, expression = parse_option(text)
            wanted.setdefault(metric, []).append(expression)
    except ThresholdError as exc:
        raise UsageError(str(exc)) from None
    test = LocalTest(
        peers=peers,
        duration=duration,
        thresholds=wanted,
        processes=processes,
        results=results,
        abort_on_fail=abort_on_fail,
    )
    test_id, summary = run_local_test(test, CHILD_COMMAND)
    if as_json:
        print_json({"id": test_id, **summary})
    else:
        print_summary(summary)
    if summary["verdict"] != "passed":
        raise UserError("thresholds failed", exit_code=1)


@app.command("summary")
def summary_command(
    test_id: str = typer.Argument(..., help="The test's id."),
    server: str = typer.Option("http://127.0.0.1:9904", "--server", envvar="RESULTS_SERVER_URL"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print a test's summary (the kept one when finished, the figures so far otherwise).

    Example: perffarm loadtest summary 1732000000000-abcdef --server http://127.0.0.1:9904
    """
    import httpx

    from perffarm.console import UserError, print_json
    from perffarm.loadtest.report import print_summary

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


@app.command("token")
def token_command(
    test_id: str = typer.Argument(..., help="The load test's id."),
    server: str | None = typer.Option(
        None,
        "--server",
        "-s",
        envvar="RESULTS_SERVER_URL",
        help="The results server. Default: the one you signed in to last.",
        show_default=False,
    ),
    admin_token: str | None = typer.Option(
        None,
        "--admin-token",
        envvar="PERFFARM_ADMIN_TOKEN",
        help=ADMIN_HELP + " Default: you, signed in with `perffarm login`.",
        show_default=False,
    ),
    creds_dir: str | None = typer.Option(None, "--creds-dir", help=CREDS_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the test's id and token as JSON."),
) -> None:
    """Make a token for the workers of one load test: it may write to that test only.

    The test's creator or an admin, signed in (`perffarm login`). The token is shown only
    this once; workers send it as the X-Perffarm-Loadtest-Token header (or ?token= on the
    original harness's routes).

    Example: perffarm loadtest token 1732000000000-abcdef --server http://perf.example.org:8080
    """
    from perffarm.client import Client
    from perffarm.client.errors import ClientError
    from perffarm.console import UserError, console, err_console, print_json

    url, token = acting_as(server, creds_dir, admin_token, needed_for="making a load test's token")
    try:
        with Client(url, token=token, retries=1, timeout=30.0) as client:
            made = client.mint_loadtest_token(test_id)
    except ClientError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(made.model_dump(mode="json"))
        return
    err_console.print(f"a token for load test {test_id!r} on {url}; shown only this once:")
    console.print(made.token)
