"""Dashboard speed with a million results stored.

The database is bulk-loaded (as series_query.py does): one machine, 100,000 runs of 10
results each, so one series (``suite.case0``) has 100,000 points. Four real run documents
of 5,000 results each, with 10 samples per result, are stored through the ingest code for the
compare page: each ordered pair is another comparison, so the uncached figures are medians
of six requests. Then one `perffarm server` process answers, and the script measures:

- the timeline page's HTML and its JSON data at the server, uncached and cached: target
  < 100 ms for every response (the page asks for the newest 10,000 points first, then the
  older ones 20,000 at a time; the whole 100,000-point line at once is printed too);
- the time until that chart is interactive in headless Chromium: target < 1 s;
- the compare page (one page of rows, sorted and filtered by the server) and its JSON twin
  for two 5,000-result runs at the server, uncached and cached: target < 300 ms;
- in this process, a lookup in the cache those answers come from (``web/cache.py``,
  cachetools' LRUCache behind a lock) beside the hand-written OrderedDict LRU it replaced,
  and what share of a cached answer that is.

Run it once per database: the default is a new SQLite file; ``--database`` takes an EMPTY
PostgreSQL database's URL.

Times "at the server" are request-to-last-byte over a kept-alive local connection, so they
include HTTP but no network.

    .venv/bin/python benchmarks/web_pages.py [--quick] [--database PATH_OR_URL]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from perffarm.analysis.statistics import summarize
from perffarm.model import Environment, Result, RunDocument, Source, canonical_params
from perffarm.server.core.principal import Machine
from perffarm.server.services.ingest import Ingestor
from perffarm.server.settings import database_url
from perffarm.server.store import machines, tables
from perffarm.server.store.engine import make_engine
from perffarm.server.store.migrate import upgrade
from perffarm.server.store.series import series_key
from perffarm.web.cache import SharedLru
from perffarm.web.views.timeline import TimelineQuery
from series_query import MACHINE_COLS, RESULT_COLS, RUN_COLS, SERIES_COLS, _quote
from server_ingest import machine_description, server_process

KEYS = 10
#: Runs stored for the compare page: each ordered pair is another, uncached comparison.
COMPARE_RUNS = 4
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _bulk_rows(runs: int) -> tuple[list, list, list, list]:
    base = datetime(2020, 1, 1, tzinfo=UTC)
    machine_rows = [(1, "bench-0", "bench", "0" * 64, True, base, "{}", "fp-0")]
    series_rows = []
    for k in range(KEYS):
        params = canonical_params({"clients": 4})
        key = series_key("bench", f"suite.case{k}", params, "latency", "fp-0", "main")
        series_rows.append(
            (k + 1, key, "bench", f"suite.case{k}", params, "latency", "fp-0", "main")
        )
    run_rows, result_rows = [], []
    rng = random.Random(3)
    result_id = 0
    for r in range(runs):
        run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        at = base + timedelta(minutes=r)
        commit = f"{r:040x}"
        run_rows.append(
            (run_id, "bench", 1, "ok", "main", commit, at, "fp-0", at, at, KEYS, "0" * 64, "{}")
        )
        # A 5% step every 10,000 commits, so the chart and the detector have work to do.
        level = 10.0 * (1.05 ** (r // 10_000))
        for k in range(KEYS):
            result_id += 1
            value = level + k + rng.gauss(0, 0.05)
            result_rows.append(
                (
                    result_id,
                    run_id,
                    k + 1,
                    1,
                    at,
                    f"suite.case{k}",
                    canonical_params({"clients": 4}),
                    "latency",
                    "ms",
                    "lower",
                    5,
                    value,
                    value,
                    0.05,
                    value - 0.1,
                    value + 0.1,
                    "[]",
                )
            )
    return machine_rows, series_rows, run_rows, result_rows


def bulk_load(database: str, runs: int) -> float:
    engine = make_engine(database_url(database))
    upgrade(engine)
    engine.dispose()
    tables = _bulk_rows(runs)
    started = time.perf_counter()
    names = ("machines", "series", "runs", "results")
    columns = (MACHINE_COLS, SERIES_COLS, RUN_COLS, RESULT_COLS)
    if database.startswith("postgres"):
        import psycopg

        plain = database_url(database).replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain) as conn, conn.cursor() as cursor:
            for table, cols, rows in zip(names, columns, tables, strict=True):
                with cursor.copy(f"COPY {table} ({_quote(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            # Later inserts through the ingest code must not collide with the loaded ids.
            cursor.execute("SELECT setval('machines_id_seq', 100)")
            cursor.execute("SELECT setval('series_id_seq', 100)")
            cursor.execute(f"SELECT setval('results_id_seq', {len(tables[3]) + 1})")
            cursor.execute("ANALYZE")
            conn.commit()
            # What autovacuum does soon after a bulk load: set the visibility map, without
            # which an index-only scan still visits the table for every row.
            conn.autocommit = True
            cursor.execute("VACUUM (ANALYZE) results")
    else:
        db = sqlite3.connect(database, isolation_level=None)

        def text(v: object) -> object:
            return v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v

        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN")
        for table, cols, rows in zip(names, columns, tables, strict=True):
            marks = ", ".join("?" * len(cols.split(",")))
            db.executemany(
                f"INSERT INTO {table} ({_quote(cols)}) VALUES ({marks})",
                ([text(v) for v in row] for row in rows),
            )
        db.execute("COMMIT")
        db.execute("ANALYZE")
        db.close()
    return time.perf_counter() - started


def compare_documents(results: int, runs: int = COMPARE_RUNS) -> list[RunDocument]:
    """Runs of the same results: every tenth result of the later runs 0.5 % slower."""
    rng = np.random.default_rng(9)
    sides = []
    for side in range(runs):
        items = []
        for i in range(results):
            shift = 0.05 * side if i % 10 == 0 else 0.0
            samples = [float(v) for v in 10 + (i % 97) + shift * 10 + rng.normal(0, 0.05, 10)]
            items.append(
                Result(
                    benchmark=f"suite.bench{i // 10}",
                    params={"size": i % 10},
                    metric="wall",
                    unit="s",
                    samples=samples,
                    summary=summarize(samples),
                )
            )
        at = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=side)
        sides.append(
            RunDocument(
                project="compare",
                machine="compare-0",
                started_at=at,
                source=Source(branch="main", commit=f"{side:040x}", commit_time=at),
                environment=Environment(fingerprint="fp-c"),
                results=items,
            )
        )
    return sides


def store_compare_runs(database: str, results: int) -> list[str]:
    engine = make_engine(database_url(database))
    with engine.connect() as conn:
        machines.register(conn, "compare-0", "bench")
        machines.approve(conn, "compare-0")
        row = conn.execute(
            tables.machines.select().where(tables.machines.c.name == "compare-0")
        ).one()
    machine = Machine(id=row.id, name=row.name, owner=row.owner, approved=True)
    documents = compare_documents(results)
    outcomes = Ingestor(engine).ingest(machine, documents)
    assert all(o.outcome == "stored" for o in outcomes), outcomes
    engine.dispose()
    return [str(document.id) for document in documents]


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[list[float], int]:
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        size = len(answer.content)
    return times, size


def report(name: str, times: list[float], target: float | None, extra: str = "") -> None:
    median = statistics.median(times)
    worst = max(times)
    verdict = ""
    if target is not None:
        verdict = f"  target < {target * 1000:.0f} ms: {'met' if median < target else 'NOT met'}"
    print(
        f"  {name}: median {median * 1000:.1f} ms, max {worst * 1000:.1f} ms "
        f"({len(times)} requests){extra}{verdict}"
    )


class _OrderedDictLru:
    """The hand-written LRU that web/cache.py replaced, kept here to compare with."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def cache_lookups(make: Any, rounds: int = 20_000) -> tuple[float, float]:
    """Seconds per hit, and per miss and put, with keys shaped like a timeline's version
    (the query, the lines' marks, the visible machines) in a cache of 32 entries."""
    query = TimelineQuery(project="bench", benchmark="suite.case0", metric="latency")
    keys = [(query, False, (((i,), 1, 1_000_000 + i),), tuple(range(50))) for i in range(64)]
    cache = make(32)
    for key in keys[:16]:
        cache.put(key, b"answer")
    started = time.perf_counter()
    for i in range(rounds):
        cache.get(keys[i % 16])
    hit = (time.perf_counter() - started) / rounds
    cache = make(32)
    started = time.perf_counter()
    for i in range(rounds):  # 64 keys in turn through 32 places: every lookup misses
        key = keys[i % 64]
        if cache.get(key) is None:
            cache.put(key, b"answer")
    return hit, (time.perf_counter() - started) / rounds


def report_cache(cached_answer: float) -> None:
    ours = [cache_lookups(SharedLru) for _ in range(5)]
    old = [cache_lookups(_OrderedDictLru) for _ in range(5)]
    hit = statistics.median(h for h, _ in ours)
    miss = statistics.median(m for _, m in ours)
    print(
        f"  cachetools LRUCache + lock: {hit * 1e6:.1f} us a hit, {miss * 1e6:.1f} us a miss "
        f"and put; the OrderedDict LRU it replaced: "
        f"{statistics.median(h for h, _ in old) * 1e6:.1f} / "
        f"{statistics.median(m for _, m in old) * 1e6:.1f} us; a hit is "
        f"{hit / cached_answer:.3%} of a cached timeline answer ({cached_answer * 1000:.1f} ms)"
    )


def browser_interactive(url: str, repeat: int) -> tuple[list[float], list[float], str]:
    """Navigation start to the chart drawn and answering the cursor, in headless Chromium;
    and to every point held (the older ones arrive after the chart is usable)."""
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    complete: list[float] = []
    held = ""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for index in range(repeat + 1):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.wait_for_selector("body[data-chart-ready]", timeout=60_000)
            # Interactive means the cursor is served: move it and wait for the tooltip.
            box = page.evaluate(
                "(() => { const u = window.perffarmChart, r = u.over.getBoundingClientRect();"
                " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
            )
            page.mouse.move(box["x"], box["y"])
            page.wait_for_selector("#tooltip:not([hidden])")
            ready = page.evaluate("window.perffarmReadyAt")
            page.wait_for_selector("#chart[data-complete]", timeout=60_000)
            held = page.get_attribute("#chart", "data-points")
            done = page.evaluate("window.perffarmCompleteAt")
            if index:  # the first load warms the browser's and the server's caches
                times.append(ready / 1000)
                complete.append(done / 1000)
            page.close()
        browser.close()
    return times, complete, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes.")
    parser.add_argument("--database", help="An EMPTY SQLite path or postgresql:// URL.")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    runs = 10_000 if args.quick else 100_000
    compare_results = 500 if args.quick else 5_000
    print(f"machine: {machine_description()}; load average {os.getloadavg()[0]:.2f} at the start")
    print(
        f"sizes: {runs * KEYS:,} results ({runs:,} runs x {KEYS}); timeline series of "
        f"{runs:,} points; compare: {COMPARE_RUNS} runs of {compare_results:,} results x 10 samples"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        database = args.database or str(work / "web.db")
        seconds = bulk_load(database, runs)
        print(f"loaded in {seconds:.1f} s")
        started = time.perf_counter()
        compare_ids = store_compare_runs(database, compare_results)
        a, b = compare_ids[:2]
        print(f"compare runs stored through ingest in {time.perf_counter() - started:.1f} s")
        query = {
            "project": "bench",
            "benchmark": "suite.case0",
            "metric": "latency",
            "params": json.dumps({"clients": 4}),
            "machine": "bench-0",
            "branch": "main",
        }
        with server_process(database, work) as url, httpx.Client(base_url=url, timeout=120) as c:
            print(f"server ({'PostgreSQL' if database.startswith('postgres') else 'SQLite'}):")
            page = f"/timeline?{urlencode(query)}"
            twin = f"/api/v1/views/timeline?{urlencode({**query, 'changepoints': 'false'})}"
            changes = f"/api/v1/views/timeline/changepoints?{urlencode(query)}"
            # The page asks for the newest 10,000 points first (the chart is drawn and usable
            # with them), then for the older ones 20,000 at a time, newest first.
            first = f"{twin}&limit=10000"
            times, size = timed(c, page, 1)
            report("timeline HTML, first request", times, 0.100, f", {size:,} bytes")
            times, _ = timed(c, page, args.repeat)
            report("timeline HTML, again", times, 0.100)
            times, size = timed(c, first, 1)
            report(
                "timeline data, first piece (10,000 points), uncached",
                times,
                0.100,
                f", {size / 1e6:.1f} MB",
            )
            # A different limit is another cache entry: each of these reads the database.
            uncached = [timed(c, f"{twin}&limit={10_000 + i}", 1)[0][0] for i in range(args.repeat)]
            report("timeline data, first piece, uncached (distinct limits)", uncached, 0.100)
            times, _ = timed(c, first, args.repeat)
            report("timeline data, first piece, cached", times, 0.100)
            cached_answer = statistics.median(times)
            answer = c.get(first).json()
            cursor, pieces, started = answer["next_cursor"], [], time.perf_counter()
            while cursor:
                piece_times, _ = timed(c, f"{twin}&limit=20000&before={cursor}", 1)
                pieces.append(piece_times[0])
                cursor = c.get(f"{twin}&limit=20000&before={cursor}").json()["next_cursor"]
            if pieces:
                report(
                    f"timeline data, each older piece (20,000 points, {len(pieces)} pieces)",
                    pieces,
                    0.100,
                )
            whole, size = timed(c, twin, 1)
            report(
                f"timeline data, whole line at once ({runs:,} points), uncached",
                whole,
                None,
                f", {size / 1e6:.1f} MB",
            )
            times, _ = timed(c, twin, args.repeat)
            report("timeline data, whole line at once, cached", times, None)
            first_changes, _ = timed(c, changes, 1)
            again, _ = timed(c, changes, 3)
            report("change points, first request (detection)", first_changes, None)
            report("change points, again (cached)", again, None)
            # Every ordered pair of the stored runs is another comparison: half of them
            # measure the page uncached, the other half its JSON twin.
            pairs = list(itertools.permutations(compare_ids, 2))
            html_pairs, json_pairs = pairs[0::2], pairs[1::2]
            times = []
            for x, y in html_pairs:
                one, size = timed(c, f"/compare?a={x}&b={y}", 1)
                times += one
            report(
                f"compare HTML, first view ({compare_results:,} results, compare_runs), uncached",
                times,
                0.300,
                f", {size / 1e6:.2f} MB (one page of rows)",
            )
            a, b = html_pairs[0]
            compare = f"/compare?a={a}&b={b}"
            times, _ = timed(c, compare, args.repeat)
            report("compare HTML, again (comparison cached)", times, 0.300)
            times, _ = timed(c, compare + "&sort=ratio&dir=desc&verdict=slower&page=2", args.repeat)
            report("compare HTML, sorted + filtered + page 2 (cached)", times, 0.300)
            times = []
            for x, y in json_pairs:
                one, size = timed(c, f"/api/v1/views/compare?a={x}&b={y}", 1)
                times += one
            a, b = json_pairs[0]
            twin_compare = f"/api/v1/views/compare?a={a}&b={b}"
            report("compare JSON (page of 100), uncached", times, 0.300, f", {size / 1e6:.2f} MB")
            times, _ = timed(c, twin_compare, args.repeat)
            report("compare JSON (page of 100), cached", times, 0.300)
            times, size = timed(c, twin_compare + "&per_page=10000", args.repeat)
            report(
                "compare JSON, every row (per_page=10000), cached",
                times,
                None,
                f", {size / 1e6:.2f} MB",
            )
            print("cache of the answers (in this process):")
            report_cache(cached_answer)
            print("headless Chromium:")
            try:
                times, complete, held = browser_interactive(url + page, max(3, args.repeat // 3))
            except Exception as exc:  # no browser here: say so, keep the server figures
                print(f"  (no headless Chromium: {str(exc).splitlines()[0]})")
            else:
                report(f"timeline interactive ({runs:,} points)", times, 1.0)
                report(f"timeline holding all {held} points", complete, None)
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other work on this machine)")


if __name__ == "__main__":
    main()
