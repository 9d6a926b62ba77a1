"""Load-test ingest speed: batch datapoints/s into SQLite and PostgreSQL, single PUTs/s.

Starts `perffarm loadtest server` on a free local port and drives it with a real HTTP
client. Example: python benchmarks/loadtest_ingest.py --quick [--database postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx

TOKEN = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def put_requests(port: int, body: str, total: int, connections: int) -> float:
    """Keep-alive HTTP/1.1 PUTs from raw sockets: a Python HTTP client library would be
    the bottleneck long before the server is."""
    request = (
        f"PUT /test/bench/peer/p/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
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


def peer_metrics() -> dict:
    """What one real peer reports per period: 7 categories x 7 figures and 4 more."""
    categories = ("sent", "received", "relayed", "all", "relevant", "duplicate", "expired")
    suffixes = ("", "Total", "PerSecond", "Bytes", "TotalBytes", "BytesPerSecond")
    metrics: dict = {f"{c}{s}": 1234.5 for c in categories for s in suffixes}
    metrics.update({f"{c}AveragePacketSize": 48.0 for c in categories})
    metrics.update(connectedPeers=1, knownPeersCount=9, position=[1.5, 0, 2.5])
    metrics["averageLatency"] = 3.25
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default=None, help="default: a SQLite file")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    batches, per_batch, puts = (20, 2000, 2000) if args.quick else (100, 5000, 20000)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        database = args.database or f"{tmp}/lt.db"
        env = dict(os.environ, PORT=str(port), TEST_RESULTS_LOCATION=tmp)
        env["PERFFARM_LOADTEST_TOKEN"] = TOKEN
        server = subprocess.Popen(
            [sys.executable, "-m", "perffarm.loadtest.cli", "server", "--host", "127.0.0.1",
             "--database", database],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    httpx.get(f"{base}/status", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            metrics = peer_metrics()
            auth = {"X-Perffarm-Loadtest-Token": TOKEN}
            httpx.post(f"{base}/test/bench", json={"started": True}).raise_for_status()
            bodies = [
                httpx.Request("POST", "/", json={
                    "worker": "w", "incarnation": "i", "sequence": n,
                    "datapoints": [
                        {"peerId": f"p{i}", "timestamp": 1, "metrics": metrics}
                        for i in range(per_batch)
                    ],
                }).read()
                for n in range(batches)
            ]  # fmt: skip
            with httpx.Client(base_url=base, headers=auth, timeout=120) as client:
                start = time.perf_counter()
                for body in bodies:
                    client.post(
                        "/api/v1/loadtests/bench/datapoints",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    ).raise_for_status()
                batch_seconds = time.perf_counter() - start

            threads = 32
            put_seconds = asyncio.run(put_requests(port, json.dumps(metrics), puts, threads))
        finally:
            server.terminate()
            server.wait()
    kind = "postgresql" if args.database else "sqlite"
    print(
        f"database: {kind}; cores: {os.cpu_count()}; metrics per datapoint: {len(peer_metrics())}"
    )
    print(f"batch ingest: {batches} batches x {per_batch} datapoints in {batch_seconds:.2f} s "
          f"= {batches * per_batch / batch_seconds:,.0f} datapoints/s")  # fmt: skip
    print(f"single PUT .../metrics: {puts} requests ({threads} connections) in {put_seconds:.2f} s "
          f"= {puts / put_seconds:,.0f} requests/s over keep-alive connections")  # fmt: skip


if __name__ == "__main__":
    main()
