"""`loadtest local` end to end with real WebSocket traffic, and killing a worker mid-test."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.loadtest.conftest import TOKEN, Lighthouse, LoadTestServer, cli

pytestmark = pytest.mark.slow


def test_local_passes_with_real_traffic(tmp_path: Path) -> None:
    done = subprocess.run(
        cli("local", "--peers", "50", "--duration", "20", "--json",
            "--threshold", "receivedPerSecond=p(50) > 20", "--threshold", "duplicate=count == 0",
            "--results-location", str(tmp_path)),
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["verdict"] == "passed"
    assert summary["peers"] == 50
    assert summary["metrics"]["received"]["sum"] > 0
    assert summary["latency_ms"]["count"] > 0
    assert summary["workers"][0]["status"] == "finished"
    assert (tmp_path / f"{summary['id']}.json").exists()


def test_local_fails_on_a_threshold(tmp_path: Path) -> None:
    done = subprocess.run(
        cli("local", "--peers", "4", "--duration", "3", "--threshold", "received=count > 1e12"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "FAIL received" in done.stdout
    assert "error: thresholds failed" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_killed_worker_is_missing_and_acknowledged_data_is_kept(
    tmp_path: Path, lighthouse: Lighthouse
) -> None:
    server = LoadTestServer(
        tmp_path, str(tmp_path / "lt.db"), PERFFARM_LOADTEST_MISSING_AFTER="4"
    ).start()
    auth = {"X-Perffarm-Loadtest-Token": TOKEN}
    try:
        api = f"{server.url}/api/v1/loadtests"
        httpx.post(api, json={"id": "t-kill"}, headers=auth).raise_for_status()
        workers = [
            subprocess.Popen(
                cli(
                    "worker",
                    "--server",
                    server.url,
                    "--test-id",
                    "t-kill",
                    "--peers",
                    "5",
                    "--duration",
                    "12",
                    "--target",
                    lighthouse.url,
                    "--token",
                    TOKEN,
                    "--name",
                    f"w{i}",
                    "--ack-log",
                    str(tmp_path / f"w{i}.acks"),
                ),
            )
            for i in range(3)
        ]
        httpx.post(f"{api}/t-kill/start", headers=auth).raise_for_status()
        acks = tmp_path / "w1.acks"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_lines(acks)) < 2:
            time.sleep(0.1)
        workers[1].kill()
        workers[1].wait()
        for w in (workers[0], workers[2]):
            assert w.wait(timeout=90) == 0
        summary = httpx.post(f"{api}/t-kill/finish", headers=auth, timeout=60).json()["summary"]
        assert summary["missing_workers"] == ["w1"]
        acknowledged = sum(json.loads(line)["datapoints"] for line in _lines(acks))
        stored = httpx.get(f"{server.url}/test/t-kill?dataPoints=true").json()["dataPoints"]
        assert acknowledged >= 10
        assert sum(1 for p in stored if p["peerId"].startswith("w1-")) >= acknowledged
        status = {w["name"]: w["status"] for w in summary["workers"]}
        assert status == {"w0": "finished", "w1": "missing", "w2": "finished"}
    finally:
        server.stop()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_abort_on_fail_stops_at_a_failure_that_cannot_recover() -> None:
    done = subprocess.run(
        cli("local", "--peers", "4", "--duration", "120", "--abort-on-fail",
            "--threshold", "sent=count < 10", "--json"),
        capture_output=True, text=True, timeout=100,
    )  # fmt: skip
    assert done.returncode == 1
    assert "aborting: sent: count < 10" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["verdict"] == "failed"
    assert summary["thresholds"][0]["observed"] >= 10


def test_the_server_aborts_on_an_abort_on_fail_threshold_and_the_workers_stop(
    tmp_path: Path, database: str, lighthouse: Lighthouse
) -> None:
    server = LoadTestServer(tmp_path, database, PERFFARM_LOADTEST_CHECK_EVERY="1").start()
    auth = {"X-Perffarm-Loadtest-Token": TOKEN}
    try:
        api = f"{server.url}/api/v1/loadtests"
        definition = {
            "id": "t-abort",
            "thresholds": {
                "sent": [{"threshold": "count < 10", "abortOnFail": True}],
                "duplicate": ["count == 0"],
            },
        }
        httpx.post(api, json=definition, headers=auth).raise_for_status()
        workers = [
            subprocess.Popen(
                cli(
                    "worker",
                    "--server",
                    server.url,
                    "--test-id",
                    "t-abort",
                    "--peers",
                    "3",
                    "--duration",
                    "600",
                    "--target",
                    lighthouse.url,
                    "--token",
                    TOKEN,
                    "--name",
                    f"w{i}",
                ),
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        httpx.post(f"{api}/t-abort/start", headers=auth).raise_for_status()
        # The workers run for 600 s unless the server finishes the test: they stop when
        # their next batch is answered test-already-finished.
        for worker in workers:
            _, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            assert "finished on the server before the end" in err
        info = httpx.get(f"{api}/t-abort").json()
        assert info["status"] == "finished" and info["verdict"] == "failed"
        summary = httpx.get(f"{api}/t-abort/summary").json()
        assert summary["aborted"]["metric"] == "sent"
        assert summary["aborted"]["observed"] >= 10
        assert summary["verdict"] == "failed"
        whole = json.loads((server.results / "t-abort.json").read_text())
        assert whole["finished"] == info["finished"] and len(whole["dataPoints"]) > 0
        assert "perffarm_loadtest_aborted_tests_total 1" in httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
