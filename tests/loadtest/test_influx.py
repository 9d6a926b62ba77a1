"""The InfluxDB relay against a real InfluxDB 1.x (Debian's `influxdb`), read back."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.loadtest.conftest import TOKEN, LoadTestServer
from tests.support import free_port, require

INFLUXD = shutil.which("influxd")
require(INFLUXD is not None, "influxd is not installed (apt influxdb)")


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[str]:
    http, rpc = free_port(), free_port()
    root = tmp_path / "influx"
    config = tmp_path / "influxdb.conf"
    config.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
        f'[meta]\n  dir = "{root}/meta"\n'
        f'[data]\n  dir = "{root}/data"\n  wal-dir = "{root}/wal"\n'
        f'[http]\n  bind-address = "127.0.0.1:{http}"\n  log-enabled = false\n'
    )
    process = subprocess.Popen(
        [INFLUXD, "-config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 204:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    httpx.post(f"{url}/query", params={"q": "CREATE DATABASE comms"}).raise_for_status()
    yield url
    process.terminate()
    process.wait(20)


def test_datapoints_reach_influxdb(tmp_path: Path, influx: str) -> None:
    server = LoadTestServer(tmp_path, str(tmp_path / "lt.db"), STATS_SERVER_URL=influx + "/")
    server.start()
    try:
        base = server.url
        httpx.post(f"{base}/test/t-influx", json={"started": True}).raise_for_status()
        for i in range(3):
            httpx.put(
                f"{base}/test/t-influx/peer/peer-a/metrics",
                json={"sent": i, "receivedPerSecond": 10.5, "position": [1, 2, 3]},
            ).raise_for_status()
        batch = {
            "worker": "w",
            "incarnation": "i",
            "sequence": 0,
            "datapoints": [
                {"peerId": f"b{i}", "timestamp": 1_700_000_000_000 + i, "metrics": {"sent": 1}}
                for i in range(50)
            ],
        }
        httpx.post(
            f"{base}/api/v1/loadtests/t-influx/datapoints",
            json=batch,
            headers={"X-Perffarm-Loadtest-Token": TOKEN},
        ).raise_for_status()
        query = 'SELECT count("sent") FROM "test-t-influx"'
        deadline = time.monotonic() + 20
        count = None
        while time.monotonic() < deadline:
            answer = httpx.get(f"{influx}/query", params={"db": "comms", "q": query}).json()
            series = answer["results"][0].get("series")
            if series and series[0]["values"][0][1] == 53:
                count = 53
                break
            time.sleep(0.2)
        assert count == 53
        q = 'SELECT "x", "y", "receivedPerSecond" FROM "test-t-influx" WHERE "peer" = \'peer-a\''
        rows = httpx.get(f"{influx}/query", params={"db": "comms", "q": q}).json()
        values = rows["results"][0]["series"][0]["values"]
        assert [v[1:] for v in values] == [[1.0, 3.0, 10.5]] * 3
        assert "perffarm_loadtest_relay_sent_lines_total 53" in httpx.get(f"{base}/metrics").text
    finally:
        server.stop()


def test_a_dead_influxdb_never_fails_ingest(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    server = LoadTestServer(tmp_path, str(tmp_path / "lt.db"), STATS_SERVER_URL=dead).start()
    try:
        httpx.post(f"{server.url}/test/t", json={"started": True}).raise_for_status()
        for _ in range(20):
            answer = httpx.put(f"{server.url}/test/t/peer/p/metrics", json={"sent": 1})
            assert answer.status_code == 200
        deadline = time.monotonic() + 30
        while "perffarm_loadtest_relay_dropped_lines_total 20" not in (
            text := httpx.get(f"{server.url}/metrics").text
        ):
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        assert "perffarm_loadtest_datapoints_total 20" in text
    finally:
        server.stop()
