"""How the database grows, and what a prune costs while ingest goes on (issue 18).

For each database (a temporary SQLite file, and a scratch PostgreSQL database when one
answers at 127.0.0.1:5432): one `perffarm server` process takes run documents of 20 results
with 5 samples each (batched and gzipped, as `perffarm upload` sends them) and load-test
datapoints (batches of 1,000); the figures are bytes per million results and per million
datapoints. Then the retention policy (samples 90 days, datapoints 30 days) is applied
with the code the server's daily worker runs, while a second client keeps uploading new
runs: the ingest rate during the prune is printed beside the rate without it (target:
within 20 %), and the database's bytes after the prune and a VACUUM.

    .venv/bin/python benchmarks/growth.py [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import secrets
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from perffarm.model.lifecycle import RetentionPolicy
from perffarm.server.services.lifecycle import WORKER_PAUSE, Retention
from perffarm.server.settings import database_url
from perffarm.server.store import lifecycle
from perffarm.server.store import tables as t
from perffarm.server.store.engine import make_engine
from server_ingest import (
    ADMIN,
    machine_description,
    make_documents,
    register,
    scratch_postgres,
    server_process,
)

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
BATCH = 100


def database_bytes(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        _, total = lifecycle.table_usage(conn)
    return total or 0


def send_runs(client: httpx.Client, auth: dict[str, str], documents: list[str]) -> None:
    for start in range(0, len(documents), BATCH):
        body = '{"runs":[' + ",".join(documents[start : start + BATCH]) + '],"probe":null}'
        answer = client.post(
            "/api/v1/runs/batch",
            content=gzip.compress(body.encode(), compresslevel=5),
            headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        answer.raise_for_status()


def fresh_documents(count: int, machine: str) -> list[str]:
    """Runs started within the last day: the prune leaves them alone."""
    now = datetime.now(UTC)
    documents = []
    for index, text in enumerate(make_documents(count, machine, "fp-growth")):
        data = json.loads(text)
        at = now - timedelta(minutes=count - index)
        data["started_at"] = at.isoformat()
        data["source"]["commit_time"] = at.isoformat()
        data["id"] = str(uuid.uuid4())
        documents.append(json.dumps(data))
    return documents


def send_datapoints(client: httpx.Client, test_id: str, total: int) -> None:
    created = client.post(
        "/api/v1/loadtests", json={"id": test_id, "started": True}, headers=ADMIN_HEADERS
    )
    created.raise_for_status()
    for sequence in range(total // 1000):
        batch = {
            "worker": "w",
            "incarnation": "i",
            "sequence": sequence,
            "datapoints": [
                {"peerId": f"p{n % 50}", "metrics": {"sent": n, "latency": 0.5 + n % 97 / 100}}
                for n in range(1000)
            ],
        }
        client.post(
            f"/api/v1/loadtests/{test_id}/datapoints", json=batch, headers=ADMIN_HEADERS
        ).raise_for_status()
    client.post(f"/api/v1/loadtests/{test_id}/finish", headers=ADMIN_HEADERS).raise_for_status()


def ingest_rate(
    url: str, auth: dict[str, str], documents: list[str], stop: threading.Event
) -> float:
    """Runs/s of uploads until ``stop`` or the documents run out."""
    sent = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        started = time.perf_counter()
        for start in range(0, len(documents), BATCH):
            if stop.is_set():
                break
            send_runs(client, auth, documents[start : start + BATCH])
            sent += len(documents[start : start + BATCH])
        return sent / (time.perf_counter() - started)


def measure(database: str, runs: int, datapoints: int, log_dir: Path) -> None:
    engine = make_engine(database_url(database))
    with (
        server_process(database, log_dir) as url,
        httpx.Client(base_url=url, timeout=300) as client,
    ):
        name = "grow-" + secrets.token_hex(3)
        auth = {"Authorization": f"Bearer {register(client, name)}"}
        empty = database_bytes(engine)
        old = make_documents(runs, name, "fp-growth")  # started in January: past 90 days
        started = time.perf_counter()
        send_runs(client, auth, old)
        seconds = time.perf_counter() - started
        with_runs = database_bytes(engine)
        results = runs * 20
        print(f"  {runs:,} runs ({results:,} results, {results * 5:,} samples) in {seconds:.1f} s")
        per_result = (with_runs - empty) / results
        print(f"  bytes per million results: {per_result * 1e6 / 2**20:,.0f} MiB")
        send_datapoints(client, "growth", datapoints)
        with_points = database_bytes(engine)
        per_million = (with_points - with_runs) / datapoints * 1e6 / 2**20
        print(f"  bytes per million load-test datapoints: {per_million:,.0f} MiB")
        with engine.begin() as conn:
            long_ago = int((datetime.now(UTC) - timedelta(days=40)).timestamp() * 1000)
            conn.execute(t.loadtests.update().values(finished=long_ago))

        # The ingest rate alone, then during a prune of every old run.
        fresh = fresh_documents(runs // 2, name)
        half = len(fresh) // 2
        rate_alone = ingest_rate(url, auth, fresh[:half], threading.Event())
        policy = RetentionPolicy(keep_samples="90d", keep_datapoints="30d")
        retention = Retention(engine, policy, pause=WORKER_PAUSE)  # as the server's worker
        done = threading.Event()
        figures: dict[str, float] = {}

        def upload_meanwhile() -> None:
            figures["rate"] = ingest_rate(url, auth, fresh[half:], done)

        uploader = threading.Thread(target=upload_meanwhile)
        uploader.start()
        started = time.perf_counter()
        report = retention.prune()
        prune_seconds = time.perf_counter() - started
        done.set()
        uploader.join()
        print(
            f"  prune: {report.runs_reduced:,} runs ({report.samples_removed:,} samples), "
            f"{report.datapoints_removed:,} datapoints in {prune_seconds:.1f} s"
        )
        ratio = figures["rate"] / rate_alone
        print(
            f"  ingest: {rate_alone:,.0f} runs/s alone, {figures['rate']:,.0f} runs/s during "
            f"the prune ({ratio:.0%} of alone; target >= 80 %)"
        )
        lifecycle.vacuum(engine)
        after = database_bytes(engine)
        fresh_bytes = len(fresh) * 20 * per_result
        print(
            f"  database: {with_points / 2**20:,.0f} MiB before the prune, "
            f"{after / 2**20:,.0f} MiB after it and VACUUM, of which about "
            f"{fresh_bytes / 2**20:,.0f} MiB are the "
            f"{len(fresh):,} runs sent meanwhile: the pruned data went from "
            f"{with_points / 2**20:,.0f} to about {(after - fresh_bytes) / 2**20:,.0f} MiB"
        )
        if engine.dialect.name == "postgresql":
            print(
                "  (PostgreSQL's VACUUM makes the space reusable by new rows; it does not "
                "give it back to the file system)"
            )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M samples instead of 5M")
    args = parser.parse_args()
    runs, datapoints = (10_000, 200_000) if args.quick else (50_000, 1_000_000)
    print(f"machine: {machine_description()}")
    print(f"sizes: {runs:,} runs of 20 results x 5 samples; {datapoints:,} datapoints")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        print("SQLite:")
        measure(str(folder / "growth.db"), runs, datapoints, folder)
        with scratch_postgres() as postgres:
            if postgres is None:
                print("PostgreSQL: not available at 127.0.0.1:5432, skipped")
            else:
                print("PostgreSQL:")
                measure(postgres, runs, datapoints, folder)


if __name__ == "__main__":
    main()
