"""The original harness's protocol against `perffarm loadtest server`, unchanged.

The client here is written to the original API only: create, poll until started, PUT
metrics every period, finish; then the persisted file must have the original shape, and
the test must survive a server restart.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from tests.loadtest.conftest import TOKEN, LoadTestServer


def original_client(base: str, test_id: str, peer: str, periods: int, out: list) -> None:
    while not httpx.get(f"{base}/test/{test_id}").json().get("started"):
        time.sleep(0.05)
    for i in range(periods):
        answer = httpx.put(
            f"{base}/test/{test_id}/peer/{peer}/metrics",
            json={"sent": i, "received": 2 * i, "position": [i, 0, i], "knownPeersCount": 1},
        )
        out.append(answer.json())
        time.sleep(0.05)  # the original period is 2 s; the protocol does not care


def test_original_protocol_end_to_end_and_after_restart(
    lt_server: LoadTestServer, tmp_path: Path
) -> None:
    base = lt_server.url
    assert httpx.get(f"{base}/status").json() == {"status": "ok"}
    created = httpx.post(f"{base}/test/t-compat", json={})
    assert created.json() == {"id": "t-compat"}
    assert created.headers["access-control-allow-origin"] == "*"
    assert httpx.get(f"{base}/test/t-compat").json() == {"id": "t-compat"}
    # Writes before the start are refused as the original refused them.
    early = httpx.put(f"{base}/test/t-compat/peer/a/metrics", json={})
    assert (early.status_code, early.json()) == (400, {"status": "test-not-started"})

    answers: list = []
    client = threading.Thread(target=original_client, args=(base, "t-compat", "a", 5, answers))
    client.start()
    time.sleep(0.2)
    started = httpx.put(f"{base}/test/t-compat/start").json()
    assert started["id"] == "t-compat" and started["started"] > 0
    client.join(30)
    assert len(answers) == 5
    assert all(a["peerId"] == "a" and a["timestamp"] >= started["started"] for a in answers)
    results = httpx.put(f"{base}/test/t-compat/peer/a/results", json={"ok": True}).json()
    assert results["ok"] is True and results["timestamp"] > 0
    assert httpx.put(f"{base}/test/t-compat/topology", json={"a": ["b"]}).status_code == 200

    finished = httpx.put(f"{base}/test/t-compat/finish")
    whole = finished.json()
    assert list(whole) == [
        "id", "dataPoints", "started", "results", "topologyDataPoints", "finished",
    ]  # fmt: skip
    assert [p["metrics"]["sent"] for p in whole["dataPoints"]] == [0, 1, 2, 3, 4]
    assert whole["results"]["a"]["ok"] is True
    assert whole["topologyDataPoints"][0]["topology"] == {"a": ["b"]}
    on_disk = json.loads((lt_server.results / "t-compat.json").read_text())
    assert on_disk == whole

    again = httpx.put(f"{base}/test/t-compat/peer/a/metrics", json={})
    assert (again.status_code, again.json()) == (400, {"status": "test-already-finished"})
    missing = httpx.get(f"{base}/test/nope")
    assert (missing.status_code, missing.json()) == (404, {"status": "test-not-found"})
    preflight = httpx.options(
        f"{base}/test/x/start",
        headers={"Origin": "http://elsewhere", "Access-Control-Request-Method": "PUT"},
    )
    assert preflight.headers["access-control-allow-origin"] == "*"

    lt_server.stop()
    lt_server.start()
    assert httpx.get(f"{base}/test/t-compat?dataPoints=true").json() == whole
    listed = httpx.get(f"{base}/api/v1/loadtests").json()
    assert listed[0]["id"] == "t-compat" and listed[0]["datapoints"] == 5


def test_random_id_and_started_at_creation(lt_server: LoadTestServer) -> None:
    created = httpx.post(f"{lt_server.url}/test", json={"started": True}).json()
    assert created["started"] > 0 and created["id"].startswith(str(created["started"]))
    point = httpx.put(f"{lt_server.url}/test/{created['id']}/peer/p/metrics", json={"x": 1})
    assert point.status_code == 200


def test_batches_count_once_and_need_credentials(lt_server: LoadTestServer) -> None:
    base = f"{lt_server.url}/api/v1/loadtests"
    auth = {"X-Perffarm-Loadtest-Token": TOKEN}
    assert httpx.post(base, json={"id": "t-b"}).status_code == 401
    created = httpx.post(base, json={"id": "t-b", "started": True}, headers=auth)
    assert created.status_code == 201, created.text
    batch = {
        "worker": "w1",
        "incarnation": "i1",
        "sequence": 0,
        "datapoints": [{"peerId": f"p{i}", "metrics": {"received": 3}} for i in range(100)],
    }
    first = httpx.post(f"{base}/t-b/datapoints", json=batch, headers=auth).json()
    retried = httpx.post(f"{base}/t-b/datapoints", json=batch, headers=auth).json()
    assert first == {"accepted": 100, "duplicate": False}
    assert retried == {"accepted": 0, "duplicate": True}
    # The same sequence from a new incarnation (a restarted worker) is new data.
    reborn = httpx.post(
        f"{base}/t-b/datapoints", json={**batch, "incarnation": "i2"}, headers=auth
    ).json()
    assert reborn["accepted"] == 100
    summary = httpx.get(f"{base}/t-b/summary").json()
    assert summary["datapoints"] == 200
    assert summary["metrics"]["received"]["sum"] == 600
    bad = httpx.post(f"{base}", json={"thresholds": {"x": ["p95 > 1"]}}, headers=auth)
    assert bad.status_code == 422 and "AGGREGATE OPERATOR NUMBER" in bad.json()["detail"]
    metrics = httpx.get(f"{lt_server.url}/metrics").text
    assert "perffarm_loadtest_duplicate_batches_total 1" in metrics


def test_compat_routes_can_require_the_token(tmp_path: Path, database: str) -> None:
    server = LoadTestServer(tmp_path, database)
    server.start()
    server.stop()
    locked = LoadTestServer(tmp_path, database)
    locked.env = {}
    locked.process = None
    import subprocess

    from tests.loadtest.conftest import cli

    env = dict(__import__("os").environ, PORT=str(locked.port), PERFFARM_LOADTEST_TOKEN=TOKEN)
    process = subprocess.Popen(
        cli("server", "--host", "127.0.0.1", "--database", database, "--compat-auth", "token",
            "--results-location", str(tmp_path / "r")),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{locked.url}/status", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.post(f"{locked.url}/test/t1").status_code == 401
        ok = httpx.post(f"{locked.url}/test/t1", headers={"X-Perffarm-Loadtest-Token": TOKEN})
        assert ok.json() == {"id": "t1"}
    finally:
        process.terminate()
        process.wait(20)


def test_perffarm_server_takes_the_results_location_option(tmp_path: Path, database: str) -> None:
    import os
    import subprocess
    import sys

    from tests.support import free_port

    port = free_port()
    folder = tmp_path / "kept results"
    env = {k: v for k, v in os.environ.items() if k != "PERFFARM_LOADTEST_RESULTS"}
    process = subprocess.Popen(
        [sys.executable, "-m", "perffarm.commands", "server", "--address", f"127.0.0.1:{port}",
         "--database", database, "--admin-token", "adm", "--results-location", str(folder)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/status", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        httpx.post(f"{base}/test/t-opt", json={"started": True}).raise_for_status()
        httpx.put(f"{base}/test/t-opt/peer/a/metrics", json={"sent": 1}).raise_for_status()
        whole = httpx.put(f"{base}/test/t-opt/finish").json()
        assert json.loads((folder / "t-opt.json").read_text()) == whole
    finally:
        process.terminate()
        process.wait(20)
    help_text = subprocess.run(
        [sys.executable, "-m", "perffarm.commands", "server", "--help"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, COLUMNS="200"),
    ).stdout  # fmt: skip
    assert "--results-location" in help_text and "~/peer-performance-tests" in help_text
