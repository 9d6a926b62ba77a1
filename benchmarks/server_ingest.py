"""Ingest rate of the results server, beside the physical limit of the same rows.

For each database: one `perffarm server` process on a free local port; run documents with
20 results each are sent in batches (gzip, 100 runs per request, as `perffarm upload`
does) and one per request; then the same rows are written straight into the database
(SQLite: one transaction, executemany; PostgreSQL: COPY) with no HTTP and no validation.

Target (issue 3): at least 500 runs/s batched into SQLite from one server process.

    .venv/bin/python benchmarks/server_ingest.py [--quick] [--database PATH_OR_URL ...]

Without --database: a temporary SQLite file, and a scratch database on the PostgreSQL at
127.0.0.1:5432 when one answers (dropped afterwards).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from perffarm.model import Environment, Result, RunDocument, Source, Summary, canonical_params
from perffarm.server.settings import database_url
from perffarm.server.store import tables as t
from perffarm.server.store.engine import make_engine
from perffarm.server.store.ingest import summary_columns
from perffarm.server.store.migrate import upgrade
from perffarm.server.store.series import series_key

ADMIN = "bench-admin-" + secrets.token_hex(8)
POSTGRES_ADMIN = os.environ.get(
    "PERFFARM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
RESULTS_PER_RUN = 20


def machine_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{model}, {os.cpu_count()} logical cores, {system}, Python {platform.python_version()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def scratch_postgres() -> Iterator[str | None]:
    """A new empty PostgreSQL database on the local server, or None when there is none."""
    try:
        import psycopg

        name = f"perffarm_bench_{secrets.token_hex(4)}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # any failure means: no PostgreSQL to measure here
        print(f"(no PostgreSQL at {POSTGRES_ADMIN}: {str(exc).strip().splitlines()[0]})")
        yield None
        return
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server_process(database: str, log_dir: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (log_dir / f"server-{port}.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perffarm.commands",
            "server",
            "--address",
            f"127.0.0.1:{port}",
            "--database",
            database,
            "--log-level",
            "warning",
            "--admin-token",
            ADMIN,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log.name}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def make_documents(count: int, machine: str, fingerprint: str) -> list[str]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    documents = []
    for index in range(count):
        at = base + timedelta(minutes=index)
        run = RunDocument(
            project="bench",
            machine=machine,
            started_at=at,
            source=Source(branch="main", commit=f"{index:040x}", commit_time=at),
            environment=Environment(sections={"cpu": {"model": "bench"}}, fingerprint=fingerprint),
            results=[
                Result(
                    benchmark=f"suite.case{r % 10}",
                    params={"clients": r // 10 + 1, "mode": "read-write"},
                    metric="tps",
                    unit="1/s",
                    direction="higher",
                    samples=[1000.0 + index + s for s in range(5)],
                    summary=Summary(
                        n=5,
                        mean=1002.0 + index,
                        median=1002.0 + index,
                        stdev=1.58,
                        min=1000.0 + index,
                        max=1004.0 + index,
                    ),
                )
                for r in range(RESULTS_PER_RUN)
            ],
        )
        documents.append(run.to_json())
    return documents


def register(client: httpx.Client, name: str) -> str:
    answer = client.post("/api/v1/machines", json={"name": name, "owner": "bench"})
    answer.raise_for_status()
    client.post(f"/api/v1/machines/{name}/approve", headers={"Authorization": f"Bearer {ADMIN}"})
    return f"{name}:{answer.json()['secret']}"


def measure_http(url: str, batched: int, single: int) -> tuple[float, float]:
    """(runs/s batched, runs/s one per request) through the HTTP API."""
    with httpx.Client(base_url=url, timeout=120) as client:
        name = "bench-" + secrets.token_hex(4)
        auth = {"Authorization": f"Bearer {register(client, name)}"}
        documents = make_documents(batched + single, name, "fp-bench")
        started = time.perf_counter()
        for start in range(0, batched, 100):
            body = '{"runs":[' + ",".join(documents[start : start + 100]) + '],"probe":null}'
            answer = client.post(
                "/api/v1/runs/batch",
                content=gzip.compress(body.encode(), compresslevel=5),
                headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
            answer.raise_for_status()
            assert all(o["outcome"] == "stored" for o in answer.json()["outcomes"])
        batched_rate = batched / (time.perf_counter() - started)
        started = time.perf_counter()
        for document in documents[batched:]:
            answer = client.post(
                "/api/v1/runs",
                content=document,
                headers={**auth, "Content-Type": "application/json"},
            )
            assert answer.status_code == 201, answer.text
        single_rate = single / (time.perf_counter() - started)
    return batched_rate, single_rate


def rows_for(
    documents: list[str], machine_id: int, series_ids: dict[str, int]
) -> tuple[list, list]:
    """The rows perffarm writes for these documents (computed before the clock starts)."""
    runs, results = [], []
    now = datetime.now(UTC)
    for text in documents:
        doc = RunDocument.from_json(text)
        run_id = str(uuid.uuid4())
        runs.append(
            {
                "id": run_id,
                "project": doc.project,
                "machine_id": machine_id,
                "tag": None,
                "status": "ok",
                "branch": doc.source.branch,
                "commit": doc.source.commit,
                "commit_time": doc.source.commit_time,
                "fingerprint": doc.environment.fingerprint,
                "started_at": doc.started_at,
                "finished_at": None,
                "received_at": now,
                "result_count": len(doc.results),
                "sha256": "0" * 64,
                "probe": None,
                "document": text,
            }
        )
        for result in doc.results:
            params = canonical_params(result.params)
            key = series_key(
                doc.project,
                result.benchmark,
                params,
                result.metric,
                doc.environment.fingerprint,
                doc.source.branch or "",
            )
            results.append(
                {
                    "run_id": run_id,
                    "series_id": series_ids.setdefault(key, len(series_ids) + 1),
                    "machine_id": machine_id,
                    "commit_time": doc.source.commit_time,
                    "benchmark": result.benchmark,
                    "params": params,
                    "metric": result.metric,
                    "unit": result.unit,
                    "direction": result.direction.value,
                    "samples": json.dumps(result.samples),
                    **summary_columns(result),
                }
            )
    return runs, results


def prepare_direct(engine: sa.Engine, documents: list[str]) -> tuple[list, list]:
    """A machine and the series the rows refer to, then the rows themselves."""
    with engine.begin() as conn:
        machine_id = conn.execute(
            t.machines.insert()
            .values(
                name="direct-" + secrets.token_hex(4),
                owner="bench",
                secret_hash="0" * 64,
                approved=True,
                registered_at=datetime.now(UTC),
                metadata="{}",
            )
            .returning(t.machines.c.id)
        ).scalar_one()
    series_ids: dict[str, int] = {}
    runs, results = rows_for(documents, machine_id, series_ids)
    with engine.begin() as conn:
        offset = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(t.series.c.id), 0))
        ).scalar_one()
        conn.execute(
            t.series.insert(),
            [
                {
                    "id": offset + sid,
                    "key_hash": key,
                    "project": "bench",
                    "benchmark": "-",
                    "params": "{}",
                    "metric": "-",
                    "fingerprint": "-",
                    "branch": "-",
                }
                for key, sid in series_ids.items()
            ],
        )
    for row in results:
        row["series_id"] += offset
    return runs, results


def direct_sqlite(path: str, documents: list[str]) -> float:
    """runs/s written straight into a fresh SQLite file: one transaction, executemany."""
    engine = make_engine(database_url(path))
    upgrade(engine)
    runs, results = prepare_direct(engine, documents)
    engine.dispose()
    import sqlite3

    run_columns = list(runs[0])
    result_columns = list(results[0])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    as_text = lambda v: v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v  # noqa: E731
    run_rows = [tuple(as_text(r[c]) for c in run_columns) for r in runs]
    result_rows = [tuple(as_text(r[c]) for c in result_columns) for r in results]
    started = time.perf_counter()
    db.execute("BEGIN")
    db.executemany(
        f"INSERT INTO runs ({', '.join(f'{c!r}' for c in run_columns)}) "
        f"VALUES ({', '.join('?' * len(run_columns))})",
        run_rows,
    )
    db.executemany(
        f"INSERT INTO results ({', '.join(f'{c!r}' for c in result_columns)}) "
        f"VALUES ({', '.join('?' * len(result_columns))})",
        result_rows,
    )
    db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return len(runs) / elapsed


def direct_postgres(url: str, documents: list[str]) -> float:
    """runs/s written straight into PostgreSQL with COPY, one transaction."""
    engine = make_engine(database_url(url))
    upgrade(engine)
    runs, results = prepare_direct(engine, documents)
    engine.dispose()
    import psycopg

    plain = database_url(url).replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for table, rows in (("runs", runs), ("results", results)):
                columns = list(rows[0])
                quoted = ", ".join(f'"{c}"' for c in columns)
                with cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([row[c] for c in columns])
        conn.commit()
        elapsed = time.perf_counter() - started
    return len(runs) / elapsed


def bench_database(database: str, work: Path, batched: int, single: int) -> None:
    kind = "PostgreSQL" if database.startswith("postgres") else "SQLite"
    with server_process(database, work) as url:
        batched_rate, single_rate = measure_http(url, batched, single)
    documents = make_documents(batched, "direct", "fp-direct")
    if kind == "SQLite":
        limit = direct_sqlite(str(work / f"direct-{secrets.token_hex(3)}.db"), documents)
        how = "one transaction, executemany, fresh file"
    else:
        limit = direct_postgres(database, documents)
        how = "COPY, one transaction"
    print(f"\n{kind}: {database if kind == 'SQLite' else database.rsplit('@', 1)[-1]}")
    print(
        f"  perffarm, batched (100 runs/request, gzip): {batched_rate:8.0f} runs/s "
        f"({batched_rate * RESULTS_PER_RUN:,.0f} results/s)"
    )
    print(f"  perffarm, one run per request:              {single_rate:8.0f} runs/s")
    print(f"  physical limit ({how}): {limit:8.0f} runs/s")
    print(f"  batched perffarm / limit: {batched_rate / limit:.1%}")
    if kind == "SQLite":
        verdict = "met" if batched_rate >= 500 else "NOT met"
        print(f"  target >= 500 runs/s batched into SQLite: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller sizes (a smoke run).")
    parser.add_argument(
        "--database",
        action="append",
        default=[],
        help="SQLite path or postgresql:// URL (repeatable).",
    )
    args = parser.parse_args()
    batched, single = (500, 100) if args.quick else (3000, 300)
    print(f"machine: {machine_description()}")
    print(
        f"sizes: {batched} runs batched + {single} runs one by one, "
        f"{RESULTS_PER_RUN} results per run"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.database:
            for database in args.database:
                bench_database(database, work, batched, single)
            return
        bench_database(str(work / "farm.db"), work, batched, single)
        with scratch_postgres() as postgres:
            if postgres:
                bench_database(postgres, work, batched, single)


if __name__ == "__main__":
    main()
