"""One worker process with many peers: tick lag, messages/s, CPU per process, relay speed.

Starts a results server, the reference relay (or uses the sink transport) and one worker
process, then reads the worker's own health figures from the summary.
Example: python benchmarks/loadtest_worker.py --peers 1000 --duration 20 [--transport sink]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx
import psutil

TOKEN = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument(
        "--transport", default="websocket", choices=["websocket", "websockets", "sink"]
    )
    args = parser.parse_args()
    me = [sys.executable, "-m", "perffarm.loadtest.cli"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with tempfile.TemporaryDirectory() as tmp:
        port, relay_port = free_port(), free_port()
        env = dict(os.environ, PERFFARM_LOADTEST_TOKEN=TOKEN)
        server = subprocess.Popen(
            [*me, "server", "--host", "127.0.0.1", "--port", str(port), "--results-location", tmp],
            env=env, **quiet,
        )  # fmt: skip
        relay = subprocess.Popen([*me, "lighthouse", "--port", str(relay_port)], **quiet)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    httpx.get(f"{base}/status", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            time.sleep(0.5)
            auth = {"X-Perffarm-Loadtest-Token": TOKEN}
            httpx.post(
                f"{base}/api/v1/loadtests", json={"id": "bench"}, headers=auth
            ).raise_for_status()
            worker = subprocess.Popen(
                [*me, "worker", "--server", base, "--test-id", "bench", "--peers", str(args.peers),
                 "--duration", str(args.duration), "--target", f"ws://127.0.0.1:{relay_port}/",
                 "--transport", args.transport, "--token", TOKEN, "--name", "bench"],
                env=env, **quiet,
            )  # fmt: skip
            httpx.post(f"{base}/api/v1/loadtests/bench/start", headers=auth).raise_for_status()
            relay_cpu = psutil.Process(relay.pid)
            relay_cpu.cpu_percent()
            worker.wait()
            relay_percent = relay_cpu.cpu_percent()
            summary = httpx.post(
                f"{base}/api/v1/loadtests/bench/finish", headers=auth, timeout=300
            ).json()["summary"]
        finally:
            for p in (relay, server):
                p.terminate()
                p.wait()
    m = summary["metrics"]
    w = summary["workers"][0]
    seconds = args.duration
    print(f"peers: {args.peers} in one worker process; transport: {args.transport}; "
          f"cores: {os.cpu_count()}")  # fmt: skip
    print(f"sent: {m['sent']['sum'] / seconds:,.0f} messages/s; "
          f"received: {m.get('received', {}).get('sum', 0) / seconds:,.0f} messages/s")  # fmt: skip
    lag = w["lag_ms"]
    print(f"tick lag ms: p50 {lag['p50']} p95 {lag['p95']} p99 {lag['p99']} max {lag['max']}")
    print(f"worker CPU: avg {w['cpu_percent_avg']}% max {w['cpu_percent_max']}%; "
          f"RSS max {(w['rss_bytes_max'] or 0) / 2**20:.0f} MiB")  # fmt: skip
    print(f"relay CPU: {relay_percent:.0f}% over the run; relay fan-out = received above")
    lat = summary["latency_ms"]
    print(f"message latency ms: p50 {lat['p50']} p99 {lat['p99']}")


if __name__ == "__main__":
    main()
