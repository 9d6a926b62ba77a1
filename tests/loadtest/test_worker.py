"""The worker's batches through a flaky network: resent until acknowledged, counted once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from perffarm.loadtest.worker import Worker, WorkerConfig
from tests.client.support import Answer, FaultServer
from tests.loadtest.conftest import TOKEN, LoadTestServer


def test_batches_survive_busy_answers_and_lost_acks_and_count_once(tmp_path: Path) -> None:
    server = LoadTestServer(tmp_path, str(tmp_path / "lt.db")).start()
    try:
        auth = {"X-Perffarm-Loadtest-Token": TOKEN}
        api = f"{server.url}/api/v1/loadtests"
        httpx.post(api, json={"id": "t-flaky", "started": True}, headers=auth).raise_for_status()
        acks = tmp_path / "acks.jsonl"
        with FaultServer(server.url) as faults:
            faults.only = "/datapoints"
            busy = Answer.json(503, {"detail": "the database is unavailable; retry later"})
            busy.headers["Retry-After"] = "0.1"
            # Batch 0: refused as busy, then stored but its answer lost (a 502 instead).
            faults.script.extend([busy, Answer(502, b"bad gateway", after_forwarding=True)])
            config = WorkerConfig(
                server=faults.url,
                test_id="t-flaky",
                peers=3,
                duration=2.5,
                transport="sink",
                token=TOKEN,
                stats_interval=1.0,
                name="flaky",
                ack_log=acks,
            )
            acknowledged = asyncio.run(Worker(config).run())
        sent = [p for p in faults.paths() if p.endswith("/datapoints")]
        log = [json.loads(line) for line in acks.read_text().splitlines()]
        info = httpx.get(f"{api}/t-flaky/datapoints", params={"limit": 10000}).json()
    finally:
        server.stop()
    batches = len(log)
    assert batches >= 3  # one a second, and the final one
    assert [entry["sequence"] for entry in log] == list(range(batches))
    assert [entry["duplicate"] for entry in log] == [True] + [False] * (batches - 1)
    assert len(sent) == batches + 2
    assert acknowledged == 3 * batches
    assert len(info["datapoints"]) == 3 * batches  # the resent batch was kept once
