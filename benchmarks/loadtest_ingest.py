"""Load-test ingest speed: batch datapoints/s into SQLite and PostgreSQL, single PUTs/s.

Starts `perffarm loadtest server` (uvicorn, with uvloop and httptools when installed) on a
free local port, once per database, and drives it over real HTTP:

- batches: ``POST /api/v1/loadtests/{id}/datapoints`` with realistic datapoints (53
  metrics each, varied values, as `perffarm loadtest worker` sends them), ``--batch-size``
  per batch, from ``--senders`` connections at once (workers send concurrently);
- single datapoints: ``PUT /test/{id}/peer/{peerId}/metrics`` with the same metrics object,
  driven by wrk (with a Lua script for the PUT body) when it is installed, else by a
  keep-alive client on raw sockets; the output says which.

Then it finishes the test (the summary over every datapoint, and ``{id}.json``) and
prints how long that took. Besides the rates, it prints the CPU seconds the server process
used: on a shared machine the wall-clock rate moves with the neighbours' load, the CPU per
datapoint much less.

Example: python benchmarks/loadtest_ingest.py --postgres postgresql://postgres@127.0.0.1/bench
         python benchmarks/loadtest_ingest.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TOKEN = "bench"
AUTH = {"X-Perffarm-Loadtest-Token": TOKEN}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peer_metrics(rng: random.Random) -> dict:
    """What one real peer reports per period: 7 categories x 7 figures and 4 more."""
    categories = ("sent", "received", "relayed", "all", "relevant", "duplicate", "expired")
    metrics: dict = {}
    for c in categories:
        count = rng.randint(0, 300)
        total = rng.randint(count, 100_000)
        metrics[c] = count
        metrics[f"{c}Total"] = total
        metrics[f"{c}PerSecond"] = round(count / 2.0, 3)
        metrics[f"{c}Bytes"] = count * 48
        metrics[f"{c}TotalBytes"] = total * 48
        metrics[f"{c}BytesPerSecond"] = round(count * 24.0, 3)
        metrics[f"{c}AveragePacketSize"] = 48.0 if count else 0.0
    metrics["connectedPeers"] = rng.randint(0, 9)
    metrics["knownPeersCount"] = 9
    metrics["position"] = [round(rng.uniform(0, 100), 3), 0, round(rng.uniform(0, 100), 3)]
    metrics["averageLatency"] = round(rng.lognormvariate(1, 0.5), 3)
    return metrics


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    have = [m for m in ("uvloop", "httptools", "orjson", "msgspec", "lz4") if _importable(m)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({model or platform.machine()}), "
        f"Python {platform.python_version()}, load average {load:.2f} at start; "
        f"installed: {', '.join(have)}"
    )


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, database: str, tmp: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PORT=str(self.port), TEST_RESULTS_LOCATION=tmp)
        env["PERFFARM_LOADTEST_TOKEN"] = TOKEN
        self.process = subprocess.Popen(
            [sys.executable, "-m", "perffarm.commands", "loadtest", "server",
             "--host", "127.0.0.1", "--database", database],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(600):
            try:
                httpx.get(f"{self.url}/status", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def batch_bodies(batches: int, size: int, senders: int, rng: random.Random) -> list[list[bytes]]:
    """Each sender's batches, as a worker would send them (its own name and sequence)."""
    pool = [peer_metrics(rng) for _ in range(size)]
    stamp = 1_700_000_000_000
    out: list[list[bytes]] = [[] for _ in range(senders)]
    for n in range(batches):
        sender = n % senders
        body = {
            "worker": f"bench-{sender}",
            "incarnation": "i",
            "sequence": n,
            "datapoints": [
                {"peerId": f"bench-{sender}-{i}", "timestamp": stamp + n * 2000, "metrics": m}
                for i, m in enumerate(pool)
            ],
        }
        out[sender].append(json.dumps(body, separators=(",", ":")).encode())
    return out


def run_batches(server: Server, bodies: list[list[bytes]], test_id: str = "bench") -> float:
    errors: list[BaseException] = []

    def send(mine: list[bytes]) -> None:
        try:
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=300) as client:
                for body in mine:
                    answer = client.post(
                        f"/api/v1/loadtests/{test_id}/datapoints",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    answer.raise_for_status()
                    assert answer.json()["duplicate"] is False
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(mine,)) for mine in bodies]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


async def put_requests(
    port: int, body: str, total: int, connections: int, test_id: str = "bench"
) -> float:
    """Keep-alive HTTP/1.1 PUTs from raw sockets (when wrk is not installed)."""
    request = (
        f"PUT /test/{test_id}/peer/p/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()

    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(total // connections) for _ in range(connections)))
    return time.perf_counter() - start


def run_puts(
    server: Server, body: str, seconds: float, connections: int, tmp: str, test_id: str = "bench"
) -> dict:
    wrk = shutil.which("wrk")
    if wrk:
        script = Path(tmp) / "put.lua"
        script.write_text(
            'wrk.method = "PUT"\n'
            f"wrk.body = {json.dumps(body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        done = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script),
             f"{server.url}/test/{test_id}/peer/p/metrics"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        text = done.stdout
        requests = int(re.search(r"(\d+) requests in", text)[1])
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        p99 = re.search(r"99%\s+(\S+)", text)
        return {
            "client": f"wrk -t1 -c{connections} -d{seconds:g}s (Lua script for the PUT body)",
            "requests": requests,
            "rate": rate,
            "errors": int(bad[1]) if bad else 0,
            "p99": p99[1] if p99 else "?",
        }
    total = int(seconds * 3000)
    elapsed = asyncio.run(put_requests(server.port, body, total, connections, test_id))
    return {
        "client": f"Python raw-socket keep-alive client, {connections} connections",
        "requests": total,
        "rate": total / elapsed,
        "errors": 0,
        "p99": "?",
    }


def bench(database: str, label: str, args: argparse.Namespace) -> None:
    rng = random.Random(9)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(database if database != "sqlite" else f"{tmp}/lt.db", tmp)
        try:
            # A fresh test each run: a PostgreSQL database may hold earlier runs' batches.
            test_id = f"bench-{time.time_ns()}"
            httpx.post(f"{server.url}/test/{test_id}", json={"started": True}).raise_for_status()
            bodies = batch_bodies(args.batches, args.batch_size, args.senders, rng)
            size = sum(len(b) for mine in bodies for b in mine) / (args.batches * args.batch_size)
            cpu0 = cpu_seconds(server.process.pid)
            seconds = run_batches(server, bodies, test_id)
            cpu = cpu_seconds(server.process.pid) - cpu0
            points = args.batches * args.batch_size
            stored = httpx.get(f"{server.url}/api/v1/loadtests/{test_id}").json()["datapoints"]
            assert stored == points, (stored, points)
            print(
                f"{label} batch ingest: {args.batches} batches x {args.batch_size} datapoints "
                f"({size:,.0f} bytes each) from {args.senders} connection(s) in {seconds:.2f} s "
                f"= {points / seconds:,.0f} datapoints/s; server CPU {cpu:.2f} s "
                f"= {points / cpu:,.0f} datapoints per CPU second"
            )
            if args.puts:
                body = json.dumps(peer_metrics(rng), separators=(",", ":"))
                cpu0 = cpu_seconds(server.process.pid)
                put = run_puts(server, body, args.put_seconds, args.connections, tmp, test_id)
                cpu = cpu_seconds(server.process.pid) - cpu0
                after = httpx.get(f"{server.url}/api/v1/loadtests/{test_id}").json()["datapoints"]
                print(
                    f"{label} single PUT .../metrics: {put['requests']:,} requests "
                    f"({put['errors']} errors, {after - stored:,} stored) = {put['rate']:,.0f} "
                    f"requests/s, p99 {put['p99']}; server CPU {cpu:.2f} s; client: "
                    f"{put['client']}"
                )
            # Finishing computes the summary over every datapoint and writes {id}.json.
            total = httpx.get(f"{server.url}/api/v1/loadtests/{test_id}").json()["datapoints"]
            started = time.perf_counter()
            finished = httpx.post(
                f"{server.url}/api/v1/loadtests/{test_id}/finish", headers=AUTH, timeout=600
            )
            finished.raise_for_status()
            seconds = time.perf_counter() - started
            written = Path(tmp, f"{test_id}.json").stat().st_size
            print(
                f"{label} finish: summary of {total:,} datapoints and {{id}}.json "
                f"({written / 1e6:,.0f} MB) written in {seconds:.2f} s"
            )
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", default=os.environ.get("PERFFARM_BENCH_POSTGRES"),
                        help="an empty PostgreSQL database's URL: measure it too")  # fmt: skip
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--senders", type=int, default=4, help="connections sending batches")
    parser.add_argument("--no-puts", dest="puts", action="store_false")
    parser.add_argument("--put-seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32, help="for the single PUTs")
    parser.add_argument("--quick", action="store_true", help="20 batches, 3 s of PUTs")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.put_seconds = 20, 3
    print(machine())
    if not args.no_sqlite:
        bench("sqlite", "SQLite:", args)
    if args.postgres:
        bench(args.postgres, "PostgreSQL:", args)


if __name__ == "__main__":
    main()
