"""How fast the `perffarm` command starts, and how fast the load-test server answers.

Prints the machine (CPU model, cores, load average), then, over ``--runs`` rounds (each
round runs every case once, in turn, so a burst of load hits them all alike):

- ``python -c pass``, ``python -c "import typer"``, ``perffarm --version``,
  ``perffarm --help``, ``perffarm run --help`` and ``perffarm server --help``:
  median and p90 wall time from spawn to exit, and the ratio of each median to
  ``import typer``'s;
- a verdict line per target of issue 15: ``--version`` and ``--help`` under 150 ms and
  within 2x of ``import typer`` measured side by side;
- the load-test results server (``perffarm loadtest server`` on a fresh temporary SQLite
  database): the time from spawn to its first 200 answer on ``GET /status``
  (target: within 2 s), over ``--server-starts`` starts;
- with ``--profile-server``: where that start spends its time, phase by phase (the same
  steps the command takes, timed in one process) and the import time by package;
- with ``--baseline SCRIPT``: another perffarm console script (e.g. a checkout of main)
  timed beside this one in the same rounds, so before and after share the machine's load.

Example: python benchmarks/cli_startup.py --runs 30 --server-starts 5 --profile-server
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

# An installed perffarm has its bytecode compiled; an editable one gets it on first run,
# unless PYTHONDONTWRITEBYTECODE is set: the children here may write it, as a user's would.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

TARGET_MS = 150.0
TARGET_RATIO = 2.0
SERVER_TARGET_S = 2.0


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {model}, {os.cpu_count()} logical cores, load average {load}; "
        f"Python {platform.python_version()} ({sys.executable})"
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def wall(argv: list[str]) -> float:
    """Seconds from spawn to exit; the command must succeed."""
    start = time.perf_counter()
    done = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=CHILD_ENV, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()}")
    return elapsed


def startup(perffarm: str, runs: int, baseline: str | None) -> None:
    python = sys.executable
    cases = {
        "python -c pass": [python, "-c", "pass"],
        'python -c "import typer"': [python, "-c", "import typer"],
    }
    for label, script in (("", perffarm), ("baseline: ", baseline)):
        if script is None:
            continue
        cases[f"{label}perffarm --version"] = [script, "--version"]
        cases[f"{label}perffarm --help"] = [script, "--help"]
        cases[f"{label}perffarm run --help"] = [script, "run", "--help"]
        cases[f"{label}perffarm server --help"] = [script, "server", "--help"]
    for argv in cases.values():  # warm the page cache and the bytecode caches
        wall(argv)
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        for name, argv in cases.items():
            times[name].append(wall(argv) * 1000)
    typer_ms = statistics.median(times['python -c "import typer"'])
    print(f"\nstart-up, {runs} runs each, interleaved (ms; ratio = median / import typer's):")
    print(f"  {'command':<38} {'median':>8} {'p90':>8} {'ratio':>7}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:<38} {median:8.1f} {percentile(values, 0.9):8.1f} {median / typer_ms:6.2f}x"
        )
    for name in ("perffarm --version", "perffarm --help"):
        median = statistics.median(times[name])
        ratio = median / typer_ms
        met = median < TARGET_MS and ratio <= TARGET_RATIO
        print(
            f"verdict {name}: median {median:.0f} ms (target < {TARGET_MS:.0f} ms), "
            f"{ratio:.2f}x import typer (target <= {TARGET_RATIO:g}x): "
            f"{'met' if met else 'NOT met'}"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_first_answer(perffarm: str) -> float:
    """Seconds from spawning `perffarm loadtest server` to its first 200 on GET /status."""
    import httpx

    with tempfile.TemporaryDirectory(prefix="perffarm-startup-") as tmp:
        port = free_port()
        argv = [
            perffarm, "loadtest", "server", "--host", "127.0.0.1", "--port", str(port),
            "--results-location", str(Path(tmp) / "results"),
            "--database", str(Path(tmp) / "lt.db"), "--token", "bench", "--stats-server-url", "",
        ]  # fmt: skip
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV
        )
        try:
            with httpx.Client(timeout=1) as client:
                while time.perf_counter() - start < 60:
                    if process.poll() is not None:
                        raise SystemExit(f"the load-test server exited ({process.returncode})")
                    try:
                        if client.get(f"http://127.0.0.1:{port}/status").status_code == 200:
                            return time.perf_counter() - start
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.005)
            raise SystemExit("the load-test server did not answer within 60 s")
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def server_start(perffarm: str, starts: int, baseline: str | None) -> None:
    scripts = {"perffarm": perffarm}
    if baseline is not None:
        scripts["baseline"] = baseline
    seconds: dict[str, list[float]] = defaultdict(list)
    for _ in range(starts):  # interleaved, as the start-up cases
        for name, script in scripts.items():
            seconds[name].append(server_first_answer(script))
    print(f"\nload-test server, spawn to first 200 on GET /status ({starts} starts each):")
    for name, values in seconds.items():
        print(f"  {name:<10} median {statistics.median(values):.2f} s: ", end="")
        print(", ".join(f"{s:.2f}" for s in values))
    median = statistics.median(seconds["perffarm"])
    print(
        f"verdict load-test server first answer: median {median:.2f} s "
        f"(target <= {SERVER_TARGET_S:g} s): {'met' if median <= SERVER_TARGET_S else 'NOT met'}"
    )


# The same steps `perffarm loadtest server` takes, timed one by one in a fresh process.
# The server's module paths are the lead's to change (issue 15): repoint the imports here.
PHASES = r"""
import os, sys, time, tempfile
from pathlib import Path
t0 = time.perf_counter()
def lap(name):
    global t0
    now = time.perf_counter()
    print(f"PHASE {name}\t{(now - t0) * 1000:.1f}", flush=True)
    t0 = now
import typer
lap("import typer")
import perffarm.commands
lap("import the commands (perffarm.commands)")
import uvicorn
lap("import uvicorn")
from perffarm.commands import _serving
lap("import the shared server-command helpers")
from perffarm.server.settings import COMPAT_AUTH_MODES, LoadTestSettings, Settings
from perffarm.server.store.server_settings import ensure_admin_token
lap("import server.settings, server.store.server_settings")
tmp = Path(tempfile.mkdtemp(prefix="perffarm-phases-"))
database = str(tmp / "lt.db")
engine, _, _ = _serving.open_and_migrate(database)
lap("open and migrate a fresh SQLite database (alembic)")
ensure_admin_token(engine, None)
engine.dispose()
lap("ensure the admin token")
os.environ.update(Settings(database=database).to_env())
os.environ.update(LoadTestSettings(results_location=tmp, compat_auth="open", token="t",
                                   influx_url=None, influx_db="comms").to_env())
import perffarm.app as composition_root
lap("import perffarm.app (FastAPI, routers, web pages)")
app = composition_root.app_from_env()
lap("build the app (app_from_env)")
import asyncio, httpx
async def first():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        assert (await client.get("/status")).status_code == 200
asyncio.run(first())
lap("first GET /status in process (ASGI)")
"""


def profile_server() -> None:
    """Phase times, then the import time by top-level package (from -X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PHASES],
        capture_output=True,
        text=True,
        env=CHILD_ENV,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the phase profile failed:\n{done.stderr[-3000:]}")
    print("\nload-test server start, phase by phase (one process; -X importtime adds ~10%):")
    total = 0.0
    for line in done.stdout.splitlines():
        if line.startswith("PHASE "):
            name, ms = line[6:].split("\t")
            total += float(ms)
            print(f"  {name:<58} {float(ms):8.1f} ms")
    print(f"  {'total':<58} {total:8.1f} ms")
    by_package: dict[str, float] = defaultdict(float)
    ours: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, _, name = (part.strip() for part in line.replace("|", ":", 2).split(":", 3))
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "perffarm" else parts[0]
        by_package[key] += int(self_us) / 1000
        if parts[0] == "perffarm":
            ours[name] = int(self_us) / 1000
    print("import time by package (self time, ms; the 15 largest):")
    for key, ms in sorted(by_package.items(), key=lambda item: -item[1])[:15]:
        print(f"  {key:<40} {ms:8.1f}")
    print("perffarm's own modules (self time: their module-level code, ms; the 10 largest):")
    for key, ms in sorted(ours.items(), key=lambda item: -item[1])[:10]:
        print(f"  {key:<40} {ms:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="rounds of each case (>= 20)")
    parser.add_argument("--server-starts", type=int, default=3, help="load-test server starts")
    parser.add_argument(
        "--perffarm",
        default=str(Path(sys.executable).with_name("perffarm")),
        help="the perffarm console script (default: beside this Python)",
    )
    parser.add_argument(
        "--baseline", help="another perffarm console script to time beside (e.g. main's)"
    )
    parser.add_argument("--no-server", action="store_true", help="skip the load-test server")
    parser.add_argument(
        "--profile-server", action="store_true", help="also break the server's start down"
    )
    args = parser.parse_args()
    if args.runs < 20:
        parser.error("--runs must be at least 20")
    print(machine())
    startup(args.perffarm, args.runs, args.baseline)
    if not args.no_server:
        server_start(args.perffarm, args.server_starts, args.baseline)
    if args.profile_server:
        profile_server()
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
