"""Series query latency over HTTP with a million results stored.

The results are bulk-loaded straight into the database (the ingest path is measured by
server_ingest.py): 10 machines (fingerprints) x 1,000 runs x 100 results, i.e. 1,000
series of 1,000 points each. Then one `perffarm server` process answers
GET /api/v1/series for random series (one whole series per request, 1,000 points) over a
kept-alive connection, and the latency percentiles are printed.

Target (issue 3): p99 under 50 ms with 1 million results stored.

    .venv/bin/python benchmarks/series_query.py [--quick] [--database PATH_OR_URL ...]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import secrets
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from perffarm.model import canonical_params
from perffarm.server.settings import database_url
from perffarm.server.store.engine import make_engine
from perffarm.server.store.migrate import upgrade
from perffarm.server.store.series import series_key
from server_ingest import machine_description, scratch_postgres, server_process

MACHINES = 10
KEYS_PER_MACHINE = 100  # 10 benchmarks x 10 client counts
BENCHMARKS = [f"suite.case{i}" for i in range(10)]
CLIENTS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def _rows(runs_per_machine: int) -> tuple[list, list, list, list]:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    machines, series, runs, results = [], [], [], []
    series_id = 0
    result_id = 0
    for m in range(MACHINES):
        machine_id = m + 1
        fingerprint = f"fp-{m}"
        machines.append(
            (machine_id, f"bench-{m}", "bench", "0" * 64, True, base, "{}", fingerprint)
        )
        keys = {}
        for benchmark in BENCHMARKS:
            for clients in CLIENTS:
                params = canonical_params({"clients": clients})
                series_id += 1
                keys[(benchmark, clients)] = series_id
                series.append(
                    (
                        series_id,
                        series_key("bench", benchmark, params, "tps", fingerprint, "main"),
                        "bench",
                        benchmark,
                        params,
                        "tps",
                        fingerprint,
                        "main",
                    )
                )
        for r in range(runs_per_machine):
            run_id = str(uuid.UUID(int=random.getrandbits(128), version=4))
            at = base + timedelta(minutes=r)
            runs.append(
                (
                    run_id,
                    "bench",
                    machine_id,
                    "ok",
                    "main",
                    f"{r:040x}",
                    at,
                    fingerprint,
                    at,
                    at,
                    KEYS_PER_MACHINE,
                    "0" * 64,
                    "{}",
                )
            )
            for (benchmark, clients), sid in keys.items():
                result_id += 1
                value = 1000.0 + r + clients
                results.append(
                    (
                        result_id,
                        run_id,
                        sid,
                        machine_id,
                        at,
                        benchmark,
                        canonical_params({"clients": clients}),
                        "tps",
                        "1/s",
                        "higher",
                        5,
                        value,
                        value,
                        1.5,
                        value - 2,
                        value + 2,
                        "[]",
                    )
                )
    return machines, series, runs, results


MACHINE_COLS = "id, name, owner, secret_hash, approved, registered_at, metadata, fingerprint"
SERIES_COLS = "id, key_hash, project, benchmark, params, metric, fingerprint, branch"
RUN_COLS = (
    "id, project, machine_id, status, branch, commit, commit_time, fingerprint, "
    "started_at, received_at, result_count, sha256, document"
)
RESULT_COLS = (
    "id, run_id, series_id, machine_id, commit_time, benchmark, params, metric, "
    "unit, direction, n, mean, median, stdev, min, max, samples"
)


def _quote(columns: str) -> str:
    return ", ".join(f'"{c.strip()}"' for c in columns.split(","))


def load(database: str, runs_per_machine: int) -> tuple[int, float]:
    """Create the schema and bulk-load; returns (results stored, seconds)."""
    engine = make_engine(database_url(database))
    upgrade(engine)
    with engine.connect() as conn:
        existing = conn.execute(sa.text("SELECT count(*) FROM results")).scalar_one()
    engine.dispose()
    if existing:
        # Loaded by an earlier run of this script: measure again without reloading.
        return existing, 0.0
    machines, series, runs, results = _rows(runs_per_machine)
    started = time.perf_counter()
    if database.startswith("postgres"):
        import psycopg

        plain = database_url(database).replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain) as conn, conn.cursor() as cursor:
            for table, columns, rows in (
                ("machines", MACHINE_COLS, machines),
                ("series", SERIES_COLS, series),
                ("runs", RUN_COLS, runs),
                ("results", RESULT_COLS, results),
            ):
                with cursor.copy(f"COPY {table} ({_quote(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cursor.execute("ANALYZE")
            conn.commit()
    else:
        db = sqlite3.connect(database, isolation_level=None)
        text = lambda v: v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v  # noqa: E731
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN")
        for table, columns, rows in (
            ("machines", MACHINE_COLS, machines),
            ("series", SERIES_COLS, series),
            ("runs", RUN_COLS, runs),
            ("results", RESULT_COLS, results),
        ):
            marks = ", ".join("?" * len(columns.split(",")))
            db.executemany(
                f"INSERT INTO {table} ({_quote(columns)}) VALUES ({marks})",
                ([text(v) for v in row] for row in rows),
            )
        db.execute("COMMIT")
        db.execute("ANALYZE")
        db.close()
    return len(results), time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def query(url: str, requests: int, runs_per_machine: int) -> tuple[list[float], int]:
    latencies = []
    points = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for index in range(requests + 10):
            m = random.randrange(MACHINES)
            params = {
                "project": "bench",
                "benchmark": random.choice(BENCHMARKS),
                "metric": "tps",
                "params": json.dumps({"clients": random.choice(CLIENTS)}),
                "machine": f"bench-{m}",
                "branch": "main",
                "limit": runs_per_machine,
            }
            started = time.perf_counter()
            answer = client.get("/api/v1/series", params=params)
            # Until the whole answer has arrived; decoding it is the client's business.
            elapsed = time.perf_counter() - started
            body = answer.json()
            assert answer.status_code == 200 and len(body["items"]) == runs_per_machine, answer.text
            if index >= 10:  # the first requests warm caches and connections
                latencies.append(elapsed)
                points += len(body["items"])
    return latencies, points


def bench_database(database: str, work: Path, runs_per_machine: int, requests: int) -> None:
    kind = "PostgreSQL" if database.startswith("postgres") else "SQLite"
    stored, seconds = load(database, runs_per_machine)
    with server_process(database, work) as url:
        latencies, points = query(url, requests, runs_per_machine)
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    if seconds:
        print(
            f"\n{kind}: {stored:,} results loaded in {seconds:.1f} s "
            f"({stored / seconds:,.0f} rows/s, bulk)"
        )
    else:
        print(f"\n{kind}: {stored:,} results already stored")
    print(
        f"  series query over HTTP, {requests} requests of {points // requests:,} points: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    print(f"  target p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="100,000 results instead of 1,000,000."
    )
    parser.add_argument(
        "--database",
        action="append",
        default=[],
        help="An EMPTY SQLite path or postgresql:// URL (repeatable).",
    )
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    runs_per_machine = 100 if args.quick else 1000
    total = MACHINES * runs_per_machine * KEYS_PER_MACHINE
    print(f"machine: {machine_description()}")
    print(
        f"sizes: {total:,} results = {MACHINES} machines x {runs_per_machine} runs x "
        f"{KEYS_PER_MACHINE} results; {MACHINES * KEYS_PER_MACHINE} series of "
        f"{runs_per_machine} points"
    )
    random.seed(3)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        databases = args.database or [str(work / f"series-{secrets.token_hex(3)}.db")]
        for database in databases:
            bench_database(database, work, runs_per_machine, args.requests)
        if not args.database:
            with scratch_postgres() as postgres:
                if postgres:
                    bench_database(postgres, work, runs_per_machine, args.requests)


if __name__ == "__main__":
    main()
