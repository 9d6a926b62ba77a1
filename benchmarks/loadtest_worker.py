"""One worker process with many peers: tick lag, messages/s, CPU per process, relay speed.

For each transport asked for (default: ``sink`` then ``websocket``), starts a results
server, the reference relay and one worker process running the default routine, then reads
the worker's own health figures from the test's summary.

- ``sink``: the peers' messages go nowhere, so the worker alone is measured (the issue's
  target, tick lag p99 < 20 ms at 1,000 peers, is judged here when the relay is the
  bottleneck);
- ``websocket``: the reference relay (rooms of 10, so each message is delivered to 9
  others): on a 2-core machine the relay and the worker share the cores, and the worker
  also receives nine messages for each one it sends.
- ``websockets-sansio``: the same, with the ``websockets`` library's sans-I/O protocol
  doing the WebSocket framing under perffarm's transport. With both framings in one run,
  a last line puts them side by side (with each one's parsing cost per message measured in
  this process), so the reason perffarm's own frame code stays is measured.

``--repeat N`` runs every transport N times, interleaved, so that a shared machine's load
weighs on each alike; the summary gives each one's median and range.

Example: python benchmarks/loadtest_worker.py --peers 1000 --duration 20 [--transport sink]
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
from typing import Any

import httpx
import psutil

TOKEN = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TRANSPORTS = ["sink", "websocket", "websockets-sansio", "websockets"]
FRAMINGS = {"websocket": "perffarm's wsclient", "websockets-sansio": "websockets sans-I/O"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument(
        "--transport",
        action="append",
        choices=TRANSPORTS,
        help="repeatable; default: sink, websocket, websockets-sansio",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each transport")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f} at start"
    )
    transports = args.transport or ["sink", "websocket", "websockets-sansio"]
    runs: dict[str, list[dict[str, Any]]] = {transport: [] for transport in transports}
    for _ in range(args.repeat):
        for transport in transports:
            runs[transport].append(run(transport, args))
    print(f"\n== summary ({args.repeat} run(s) each; load average now "
          f"{os.getloadavg()[0]:.2f})")  # fmt: skip
    for transport, figures in runs.items():
        p99 = [f["p99"] for f in figures if f["p99"] is not None]
        verdict = "met" if p99 and statistics.median(p99) < 20 else "not met"
        relay = (
            f" (relay CPU {statistics.median(f['relay_percent'] for f in figures):.0f}%)"
            if transport != "sink" else ""
        )  # fmt: skip
        print(f"{transport}: tick lag p99 {_spread(p99)} ms, target < 20 ms: {verdict}{relay}")
    if all(framing in runs for framing in FRAMINGS):
        print(framing_line(runs))


def framing_line(runs: dict[str, list[dict[str, Any]]]) -> str:
    """perffarm's frame code and the websockets library's, side by side."""
    parse = parse_cost()
    parts = []
    for transport, label in FRAMINGS.items():
        figures = runs[transport]
        p99 = [f["p99"] for f in figures if f["p99"] is not None]
        cpu = [f["cpu"] for f in figures if f["cpu"] is not None]
        received = [f["received"] for f in figures]
        parts.append(
            f"{label}: p99 {_spread(p99)} ms, worker CPU {_spread(cpu, '.0f')}%, "
            f"received {statistics.median(received):,.0f}/s, parsing {parse[transport]:.2f} us/msg"
        )
    return "framing: " + " | ".join(parts)


def parse_cost() -> dict[str, float]:
    """Microseconds to parse one received message (a relay's read: 100 small frames)."""
    from websockets.client import ClientProtocol
    from websockets.protocol import State
    from websockets.uri import parse_uri

    from perffarm.loadtest.wsclient import OP_BINARY, frame, read_frames

    messages = [bytes(48)] * 80 + [bytes(128)] * 10 + [bytes(256)] * 10
    data = b"".join(frame(OP_BINARY, m, masked=False) for m in messages)
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        read_frames(bytearray(data))
    ours = time.perf_counter() - started
    library = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=None)
    started = time.perf_counter()
    for _ in range(rounds):
        library.receive_data(data)
        [bytes(event.data) for event in library.events_received()]
    theirs = time.perf_counter() - started
    scale = 1e6 / rounds / len(messages)
    return {"websocket": ours * scale, "websockets-sansio": theirs * scale}


def _spread(values: list[float], spec: str = ".1f") -> str:
    if not values:
        return "n/a"
    median = format(statistics.median(values), spec)
    if len(values) == 1:
        return median
    return f"{median} (median; {format(min(values), spec)} to {format(max(values), spec)})"


def run(transport: str, args: argparse.Namespace) -> dict[str, Any]:
    """One measured test; answers its tick lag p99, worker and relay CPU, messages received."""
    me = [sys.executable, "-m", "perffarm.commands", "loadtest"]
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
                 "--transport", transport, "--token", TOKEN, "--name", "bench"],
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
    print(f"\n== transport {transport}: {args.peers} peers in one worker process, "
          f"{args.duration:g} s")  # fmt: skip
    print(f"sent: {m['sent']['sum'] / seconds:,.0f} messages/s; "
          f"received: {m.get('received', {}).get('sum', 0) / seconds:,.0f} messages/s")  # fmt: skip
    lag = w["lag_ms"]
    print(f"tick lag ms: p50 {lag['p50']} p95 {lag['p95']} p99 {lag['p99']} max {lag['max']}")
    print(f"worker CPU: avg {w['cpu_percent_avg']}% max {w['cpu_percent_max']}%; "
          f"RSS max {(w['rss_bytes_max'] or 0) / 2**20:.0f} MiB")  # fmt: skip
    delivered = m.get("received", {}).get("sum", 0) / seconds
    if transport == "sink":
        print("relay: not used (the peers' messages go nowhere)")
    else:
        print(f"relay CPU: {relay_percent:.0f}% over the run; relay throughput: "
              f"{m['sent']['sum'] / seconds:,.0f} messages/s in, "
              f"{delivered:,.0f} delivered")  # fmt: skip
    lat = summary["latency_ms"]
    print(f"message latency ms: p50 {lat['p50']} p99 {lat['p99']}")
    return {
        "p99": lag["p99"],
        "relay_percent": relay_percent,
        "cpu": w["cpu_percent_avg"],
        "received": delivered,
    }


if __name__ == "__main__":
    main()
