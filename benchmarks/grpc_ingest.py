"""Load-test datapoints/s over one gRPC stream against the HTTP batch endpoint.

One `perffarm server --grpc-address` process, one database, the same datapoints (a real
peer's metrics, see loadtest_ingest.py) in batches of the same size: first POSTed to
/api/v1/loadtests/{id}/datapoints over one keep-alive connection, then sent as
DatapointBatch messages over one perffarm.v1.LoadTests/StreamDatapoints stream. Both
wait for each batch's acknowledgement (HTTP: the answer; gRPC: the BatchAck) only as
the transport does: HTTP one request at a time, gRPC streamed.

Example: python benchmarks/grpc_ingest.py --quick [--database postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time

import grpc
import httpx

from loadtest_ingest import free_port, peer_metrics
from perffarm.proto.v1 import perffarm_pb2 as pb
from perffarm.proto.v1 import perffarm_pb2_grpc

ADMIN = "bench-admin-token"


def wait_ready(base: str, target: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default=None, help="default: a SQLite file")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    batches, per_batch = (10, 2000) if args.quick else (50, 5000)
    # One real-looking metrics object per peer (seeded: every run sends the same data).
    rng = random.Random(7)
    peers = [peer_metrics(rng) for _ in range(per_batch)]
    peer_texts = [json.dumps(metrics) for metrics in peers]
    with tempfile.TemporaryDirectory() as tmp:
        port, grpc_port = free_port(), free_port()
        base, target = f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
        database = args.database or f"{tmp}/farm.db"
        server = subprocess.Popen(
            [sys.executable, "-m", "perffarm.commands", "server", "--address", f"127.0.0.1:{port}",
             "--grpc-address", target, "--database", database, "--log-level", "warning"],
            env=dict(os.environ, PERFFARM_ADMIN_TOKEN=ADMIN, TEST_RESULTS_LOCATION=tmp),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_ready(base, target)
            auth = {"Authorization": f"Bearer {ADMIN}"}
            with httpx.Client(base_url=base + "/api/v1", headers=auth, timeout=300) as client:
                for test_id in ("over-http", "over-grpc"):
                    client.post("/loadtests", json={"id": test_id, "started": True})
                bodies = [
                    json.dumps({
                        "worker": "w", "incarnation": "i", "sequence": n,
                        "datapoints": [
                            {"peerId": f"p{i}", "timestamp": 1_700_000_000_000 + n,
                             "metrics": peers[i]}
                            for i in range(per_batch)
                        ],
                    }).encode()
                    for n in range(batches)
                ]  # fmt: skip
                headers = {"Content-Type": "application/json"}
                start = time.perf_counter()
                for body in bodies:
                    answer = client.post(
                        "/loadtests/over-http/datapoints", content=body, headers=headers
                    )
                    answer.raise_for_status()
                http_seconds = time.perf_counter() - start
                http_bytes = sum(len(b) for b in bodies)

            messages = [
                pb.DatapointBatch(
                    test_id="over-grpc", worker="w", incarnation="i", sequence=n,
                    datapoints=[
                        pb.Datapoint(peer_id=f"p{i}", timestamp=1_700_000_000_000 + n,
                                     metrics_json=peer_texts[i])
                        for i in range(per_batch)
                    ],
                )
                for n in range(batches)
            ]  # fmt: skip
            grpc_bytes = sum(m.ByteSize() for m in messages)
            options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
            with grpc.insecure_channel(target, options=options) as channel:
                stub = perffarm_pb2_grpc.LoadTestsStub(channel)
                metadata = [("authorization", f"Bearer {ADMIN}")]
                start = time.perf_counter()
                acks = list(stub.StreamDatapoints(iter(messages), metadata=metadata))
                grpc_seconds = time.perf_counter() - start
            assert sum(a.accepted for a in acks) == batches * per_batch
            with httpx.Client(base_url=base + "/api/v1", headers=auth) as client:
                for test_id in ("over-http", "over-grpc"):
                    stored = client.get(f"/loadtests/{test_id}").json()["datapoints"]
                    assert stored == batches * per_batch, (test_id, stored)
        finally:
            server.terminate()
            server.wait()
    total = batches * per_batch
    kind = "postgresql" if args.database else "sqlite"
    print(f"machine: {platform.machine()} {platform.processor() or ''}; cores: {os.cpu_count()};"
          f" python {platform.python_version()}; database: {kind}")  # fmt: skip
    print(f"data: {batches} batches x {per_batch} datapoints = {total:,} datapoints; "
          f"{len(peers[0])} metrics per datapoint")  # fmt: skip
    print(f"HTTP batch endpoint: {http_bytes / 1e6:.1f} MB of JSON in {http_seconds:.2f} s "
          f"= {total / http_seconds:,.0f} datapoints/s")  # fmt: skip
    print(f"gRPC stream:         {grpc_bytes / 1e6:.1f} MB of protobuf in {grpc_seconds:.2f} s "
          f"= {total / grpc_seconds:,.0f} datapoints/s")  # fmt: skip
    print(f"gRPC / HTTP: {http_seconds / grpc_seconds:.2f}x")


if __name__ == "__main__":
    main()
