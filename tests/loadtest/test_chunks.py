"""Datapoints in chunks: the 0005 migration, batch parsing, the live cursor, the fast PUT
path and the ingest function other transports call, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.model.loadtest import BatchAck
from perffarm.server.services import loadtest_batches, loadtests
from perffarm.server.settings import LoadTestSettings, Settings, database_url
from perffarm.server.store import loadtests as chunk_store
from perffarm.server.store import migrate
from perffarm.server.store.engine import make_engine

ADMIN = "admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def client(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PERFFARM_LOADTEST_RESULTS", str(tmp_path / "results"))
    app = create_app(Settings(database=database, admin_token=ADMIN))
    with TestClient(app) as test_client:
        yield test_client


def _batch(worker: str, sequence: int, peers: int, **extra: object) -> dict:
    return {
        "worker": worker,
        "incarnation": "i",
        "sequence": sequence,
        "datapoints": [
            {"peerId": f"{worker}-{i}", "timestamp": 1_000 + sequence, "metrics": {"sent": i}}
            for i in range(peers)
        ],
        **extra,
    }


def test_a_database_at_0004_keeps_its_datapoints_through_0005_and_back(database: str) -> None:
    engine = make_engine(database_url(database))
    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), "0004")
    metrics = [{"sent": i, "position": [i, 0, 2 * i], "name": "p\u00e9"} for i in range(12_345)]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO loadtests (id, created, started, finished, definition, results)"
                " VALUES ('old', 1, 2, NULL, '{}', '{}'), ('other', 1, 2, NULL, '{}', '{}')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO loadtest_datapoints (test_id, peer_id, timestamp, metrics)"
                " VALUES (:t, :p, :ts, :m)"
            ),
            [
                {"t": "old" if i % 5 else "other", "p": f"peer-{i % 7}", "ts": 10 + i,
                 "m": json.dumps(m, separators=(",", ":"))}
                for i, m in enumerate(metrics)
            ],
        )  # fmt: skip
    expected = {
        test: [
            {"peerId": f"peer-{i % 7}", "timestamp": 10 + i, "metrics": m}
            for i, m in enumerate(metrics)
            if (test == "old") == bool(i % 5)
        ]
        for test in ("old", "other")
    }
    before, after = migrate.upgrade(engine)
    assert (before, after) == ("0004", migrate.head_revision())
    store = loadtests.LoadTests(engine, LoadTestSettings())
    for test, points in expected.items():
        whole = json.loads("".join(store.whole_test_json(test)))
        assert whole["dataPoints"] == points
        assert store.info(store.row(test)).datapoints == len(points)
        summary = store.summary(test, end_ms=100, definition={})
        assert summary["metrics"]["sent"]["sum"] == sum(p["metrics"]["sent"] for p in points)
    with engine.connect() as conn:
        chunks = conn.execute(
            sa.select(sa.func.count()).select_from(sa.table("loadtest_chunks"))
        ).scalar_one()
        assert chunks == 3  # 9,876 datapoints of 'old' in chunks of 5,000; 2,469 of 'other'
        assert not sa.inspect(conn).has_table("loadtest_datapoints")
    # And back: the downgrade unpacks the chunks into rows again, in order.
    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), "0004")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT peer_id, timestamp, metrics FROM loadtest_datapoints"
                    " WHERE test_id = 'old' ORDER BY id")
        ).all()  # fmt: skip
    assert [
        {"peerId": p, "timestamp": t, "metrics": json.loads(m)} for p, t, m in rows
    ] == expected["old"]
    engine.dispose()


def test_batches_are_stored_as_sent_and_read_in_order(client: TestClient) -> None:
    client.post("/api/v1/loadtests", json={"id": "c", "started": True}, headers=AUTH)
    url = "/api/v1/loadtests/c/datapoints"
    # Metrics are kept byte for byte (spacing, key order, a number's spelling).
    raw = (
        b'{"worker":"w","incarnation":"i","sequence":0,"datapoints":['
        b'{"metrics": {"z": 1, "a": [1, 2]} ,"peerId":"p0"},'
        b'{"peerId":"p1","timestamp":5,"metrics":{"sent":1.50E+2,"received":3}}]}'
    )
    answer = client.post(url, content=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.json() == {"accepted": 2, "duplicate": False}
    for n in range(1, 4):
        assert client.post(url, json=_batch("w", n, 3), headers=AUTH).json()["accepted"] == 3
    # A retried batch counts once; a retried batch from a new incarnation is new data.
    assert client.post(url, json=_batch("w", 2, 3), headers=AUTH).json() == {
        "accepted": 0,
        "duplicate": True,
    }
    whole = client.get("/test/c?dataPoints=true").text
    assert '"metrics":{"z": 1, "a": [1, 2]}' in whole and '"sent":1.50E+2' in whole
    points = client.get("/api/v1/loadtests/c/datapoints", params={"limit": 10000}).json()
    assert [p["peerId"] for p in points["datapoints"]] == ["p0", "p1"] + [
        f"w-{i}" for _ in range(3) for i in range(3)
    ]
    assert points["datapoints"][0]["timestamp"] > 1_700_000_000_000  # stamped on arrival
    assert points["datapoints"][1]["metrics"] == {"sent": 150.0, "received": 3}
    # The live page's cursor pages through chunks, whatever the page size.
    seen, after = [], 0
    while True:
        page = client.get(
            "/api/v1/loadtests/c/datapoints", params={"after": after, "limit": 2}
        ).json()
        if not page["datapoints"]:
            break
        seen += page["datapoints"]
        after = page["next_after"]
    assert seen == points["datapoints"]
    summary = client.get("/api/v1/loadtests/c/summary").json()
    assert summary["datapoints"] == 11 and summary["metrics"]["received"]["sum"] == 3
    assert client.get("/api/v1/loadtests/c").json()["datapoints"] == 11


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"worker":"w","incarnation":"i","sequence":0,"x":1}', "body.x"),
        (b'{"incarnation":"i","sequence":0}', "body.worker"),
        (b'{"worker":"w","incarnation":"i","sequence":0,"datapoints":[{"peerId":"a"}]}',
         "body.datapoints.0.metrics"),
        (b'{"worker":"w","incarnation":"i","sequence":0,"datapoints":'
         b'[{"peerId":"a","metrics":{},"x":1}]}', "body.datapoints.0"),
        (b'{"worker":"w","incarnation":"i","sequence":0,"datapoints":'
         b'[{"peerId":"a\\u0000","metrics":{}}]}', "body.datapoints.0.peerId"),
        (b'{"worker":"w","incarnation":"i","sequence":0,"datapoints":'
         b'[{"peerId":"a","metrics":{"s":"\xff"}}]}', "body"),
        (b'{"worker":"w","incarnation":"i","sequence":0,"datapoints":'
         b'[{"peerId":"a","metrics":{"s":tru}}]}', "body"),
        (b"[]", "body"),
    ],
)  # fmt: skip
def test_parse_batch_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(loadtest_batches.BatchError) as caught:
        loadtest_batches.parse_batch(body)
    assert caught.value.field == field


def test_ingest_batch_for_other_transports(client: TestClient) -> None:
    app = client.app
    client.post("/api/v1/loadtests", json={"id": "g"}, headers=AUTH)
    batch = loadtest_batches.parse_batch(
        b'{"worker":"grpc","incarnation":"i","sequence":0,'
        b'"datapoints":[{"peerId":"p","metrics":{"sent": 2}}]}'
    )

    async def ingest() -> BatchAck:
        return await loadtests.ingest_batch(app, "g", batch)

    with pytest.raises(loadtests.IngestRefused) as refused:
        client.portal.call(ingest)
    assert (refused.value.status, refused.value.code) == (409, "test-not-started")
    client.post("/api/v1/loadtests/g/start", headers=AUTH)
    assert client.portal.call(ingest) == BatchAck(accepted=1, duplicate=False)
    assert client.portal.call(ingest) == BatchAck(accepted=0, duplicate=True)
    assert client.get("/api/v1/loadtests/g/summary").json()["metrics"]["sent"]["sum"] == 2
    with pytest.raises(loadtest_batches.BatchError, match="must be an object"):
        loadtest_batches.parse_batch(
            b'{"worker":"w","incarnation":"i","sequence":1,'
            b'"datapoints":[{"peerId":"p","timestamp":1,"metrics":[1]}]}'
        )


@pytest.mark.postgres
def test_chunk_ids_follow_commit_order_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """A chunk whose transaction is still open holds back later chunks of the same test (and
    only of that test), so the live page's cursor never passes a chunk not yet visible."""
    app = create_app(Settings(database=postgres_url, admin_token=ADMIN))
    with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
        for test_id in ("ordered", "other"):
            client.post(f"/test/{test_id}", json={"started": True})
        store: loadtests.LoadTests = app.state.loadtests

        def batch(sequence: int) -> loadtest_batches.ParsedBatch:
            return loadtest_batches.parse_batch(json.dumps(_batch("w", sequence, peers=3)).encode())

        # Another writer (a second server process, say) between its insert and its commit.
        with store.engine.begin() as open_transaction:
            codec, blob = chunk_store.encode_chunk(
                b'[{"peerId":"first","timestamp":5,"metrics":{}}]'
            )
            chunk_store.insert_chunks(
                open_transaction,
                [
                    {
                        "test_id": "ordered",
                        "worker": "other-writer",
                        "incarnation": "i",
                        "sequence": 0,
                        "first_timestamp": 5,
                        "last_timestamp": 5,
                        "count": 1,
                        "codec": codec,
                        "data": blob,
                    }
                ],
            )
            same_test = pool.submit(store.add_batch, "ordered", batch(1))
            assert pool.submit(store.add_batch, "other", batch(1)).result(timeout=30) == (3, False)
            # The same test's batch must wait for that writer: wait until PostgreSQL shows
            # it waiting on a lock (the positive signal), checking it never finished first.
            deadline = time.monotonic() + 30
            while not _a_session_waits_on_a_lock(store.engine):
                assert not same_test.done(), "the batch did not wait for the other writer"
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert not same_test.done()
        assert same_test.result(timeout=30) == (3, False)
        stored = client.get("/api/v1/loadtests/ordered/datapoints", params={"after": 0}).json()
        assert [p["peerId"] for p in stored["datapoints"]] == ["first", "w-0", "w-1", "w-2"]


def _a_session_waits_on_a_lock(engine: sa.Engine) -> bool:
    # A new connection each time: pg_stat_activity is a snapshot per transaction.
    with engine.connect() as conn:
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


@pytest.mark.postgres
def test_single_puts_after_a_lost_database_connection(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group writer's own PostgreSQL connection, cut as by a database restart: found
    cut while busy, that group is a 503 (retry later) and the next one gets a new
    connection; found cut after being idle, it is replaced before use."""
    app = create_app(Settings(database=postgres_url, admin_token=ADMIN))

    def cut_connections() -> None:
        with app.state.engine.connect() as conn:
            cut = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
        assert cut, "the writer's connection was not found"

    with TestClient(app) as client:
        client.post("/test/cut", json={"started": True})
        assert client.put("/test/cut/peer/a/metrics", json={"sent": 1}).status_code == 200
        cut_connections()
        refused = client.put("/test/cut/peer/a/metrics", json={"sent": 100})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert client.put("/test/cut/peer/a/metrics", json={"sent": 2}).status_code == 200
        monkeypatch.setattr(chunk_store.PostgresChunkWriter, "IDLE_CHECK", 0.0)
        cut_connections()
        assert client.put("/test/cut/peer/a/metrics", json={"sent": 4}).status_code == 200
        summary = client.get("/api/v1/loadtests/cut/summary").json()
        assert summary["metrics"]["sent"]["sum"] == 7


def test_the_fast_put_answers_like_the_ordinary_way(client: TestClient) -> None:
    client.post("/test/f", json={"started": True})
    body = {"sent": 1, "position": [1, 0, 2]}
    fast = client.put("/test/f/peer/a/metrics", json=body)
    # With credentials or a gzip body a PUT takes the ordinary way, through the middleware.
    ordinary = client.put("/test/f/peer/a/metrics", json=body, headers=AUTH)
    zipped = client.put(
        "/test/f/peer/a/metrics",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    for answer in (fast, ordinary, zipped):
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "*"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.json()["metrics"] == body and answer.json()["peerId"] == "a"
    bad = client.put("/test/f/peer/a/metrics", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401
    assert client.put("/test/nope/peer/a/metrics", json={}).json() == {"status": "test-not-found"}
    assert client.put("/test/f/peer/a/metrics", content=b"not json").json()["metrics"] == {}
    whole = client.put("/test/f/finish").json()
    assert [p["metrics"] for p in whole["dataPoints"]] == [body, body, body, {}]
    late = client.put("/test/f/peer/a/metrics", json=body)
    assert (late.status_code, late.json()) == (400, {"status": "test-already-finished"})


def test_k6_threshold_objects_are_checked_and_kept(client: TestClient) -> None:
    bad = {"id": "k", "thresholds": {"sent": [{"threshold": "count < 1", "abortOnFail": 3}]}}
    assert client.post("/api/v1/loadtests", json=bad, headers=AUTH).status_code == 422
    good = {
        "id": "k",
        "started": True,
        "thresholds": {
            "sent": [{"threshold": "count < 100", "abortOnFail": True, "delayAbortEval": "1s"}],
            "received": ["count >= 0"],
        },
    }
    made = client.post("/api/v1/loadtests", json=good, headers=AUTH).json()
    assert made["thresholds"]["sent"][0]["abortOnFail"] is True
    client.post("/api/v1/loadtests/k/datapoints", json=_batch("w", 0, 2), headers=AUTH)
    store: loadtests.LoadTests = client.app.state.loadtests
    row = store.row("k")
    # Within the delay nothing aborts; after it, the failing threshold does.
    assert (
        store.thresholds.check("k", loadtest_batches.now_ms(), json.loads(row.definition)) is None
    )
    client.post(
        "/api/v1/loadtests/k/datapoints",
        json={**_batch("w", 1, 1), "datapoints": [{"peerId": "x", "metrics": {"sent": 500}}]},
        headers=AUTH,
    )
    reason = store.thresholds.check("k", row.started - 5000, json.loads(row.definition))
    assert reason is not None and reason["metric"] == "sent" and reason["observed"] == 501
    _, summary = store.finish("k", aborted=reason)
    assert summary["verdict"] == "failed" and summary["aborted"]["metric"] == "sent"
    assert client.get("/api/v1/loadtests/k").json()["verdict"] == "failed"
    kept = client.get("/api/v1/loadtests/k/summary").json()
    assert kept["aborted"] == reason and kept["thresholds"][0]["abortOnFail"] is True


@pytest.mark.parametrize(
    ("metrics", "problem"),
    [
        ('{"sent": 1' + "0" * 5000 + "}", "no double can hold"),
        ('{"sent": 1e999}', "no double can hold"),
        ('{"sent": -12345678901234567890123e300}', "no double can hold"),
        ('{"x": ' + "[" * 2000 + "]" * 2000 + "}", "nested too deeply"),
    ],
)
def test_a_number_or_a_nesting_no_reader_survives_is_refused_at_the_door(
    client: TestClient, metrics: str, problem: str
) -> None:
    """Issue 17, cases 1-2: one such datapoint used to be stored, and from then on the
    test's summary, datapoints, finish and /metrics answered 500 for good."""
    client.post("/api/v1/loadtests", json={"id": "p", "started": True}, headers=AUTH)
    body = (
        '{"worker":"w","incarnation":"i","sequence":0,"datapoints":['
        '{"peerId":"ok","metrics":{"sent":1}},{"peerId":"bad","metrics":' + metrics + "}]}"
    )
    refused = client.post(
        "/api/v1/loadtests/p/datapoints",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert refused.status_code == 422, refused.text
    assert problem in refused.json()["detail"]
    # Nothing of the batch was stored, and the test goes on to a verdict.
    fine = {
        "worker": "w",
        "incarnation": "i",
        "sequence": 0,
        "datapoints": [{"peerId": "ok", "metrics": {"sent": 2.5e300}}],
    }
    assert client.post("/api/v1/loadtests/p/datapoints", json=fine, headers=AUTH).is_success
    for path in ("/api/v1/loadtests/p/summary", "/api/v1/loadtests/p/datapoints", "/metrics"):
        assert client.get(path).status_code == 200, path
    finished = client.post("/api/v1/loadtests/p/finish", headers=AUTH)
    assert finished.status_code == 200 and finished.json()["summary"]["datapoints"] == 1


def test_metrics_nested_deeper_than_the_readers_go_are_refused_or_kept_as_none(
    client: TestClient, tmp_path: Path
) -> None:
    """Found by tests/loadtest/test_hostile.py: metrics nested 255 to ~900 levels passed the
    door, and from then on the test's datapoint listing answered 500 (the JSON writer stops
    near 255 levels). The limit is 64 levels on every door."""
    client.post("/api/v1/loadtests", json={"id": "n", "started": True}, headers=AUTH)

    def nested(levels: int) -> str:  # the metrics object itself is the first level
        return '{"x": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    def batch(sequence: int, metrics: str) -> str:
        return (
            f'{{"worker":"w","incarnation":"i","sequence":{sequence},"datapoints":['
            f'{{"peerId":"ok","metrics":{{"sent":1}}}},{{"peerId":"p","metrics":{metrics}}}]}}'
        )

    url, headers = "/api/v1/loadtests/n/datapoints", {**AUTH, "Content-Type": "application/json"}
    kept = client.post(url, content=batch(0, nested(64)), headers=headers)
    assert kept.json() == {"accepted": 2, "duplicate": False}
    for sequence, levels in enumerate((65, 300), start=1):
        refused = client.post(url, content=batch(sequence, nested(levels)), headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "body.datapoints.1.metrics"
        assert "nested too deeply (more than 64 levels" in refused.json()["detail"]
    compat = client.put("/test/n/peer/old/metrics", content=nested(300))
    assert compat.status_code == 200 and compat.json()["metrics"] == {}
    for path in ("/api/v1/loadtests/n/datapoints", "/api/v1/loadtests/n/summary", "/metrics"):
        assert client.get(path).status_code == 200, path
    assert (
        client.post("/api/v1/loadtests/n/finish", headers=AUTH).json()["summary"]["datapoints"] == 3
    )


def test_a_stored_number_no_double_holds_is_read_as_null() -> None:
    """Chunks stored before the door was shut still read (the number as null)."""
    from perffarm.loadtest.relays import read_points

    data = b'[{"peerId":"p","timestamp":1,"metrics":{"sent":1' + b"0" * 5000 + b',"ok":2}}]'
    assert read_points(data)[0]["metrics"] == {"sent": None, "ok": 2}


def test_an_id_ending_in_a_newline_names_no_test_and_no_file(
    client: TestClient, tmp_path: Path
) -> None:
    """Issue 17, case 9: `$` matched before a final newline, and `abc\\n.json` was written."""
    refused = client.post("/test/abc%0A", json={"started": True})
    assert refused.status_code == 400 and refused.json()["status"] == "invalid-test-id"
    assert client.get("/test/abc%0A").status_code == 404
    assert not [p for p in tmp_path.rglob("*") if "\n" in p.name]
