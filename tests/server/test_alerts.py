"""Change points found in the background after ingest become alerts, visible over the API.

Every test uploads real run documents through the real API (SQLite and PostgreSQL) and
waits for the server's detection worker to drain its queue.
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from perffarm.model import Environment, Result, RunDocument, Source
from perffarm.server.services.detection import DetectionWorker
from perffarm.server.store import alerts
from perffarm.server.store import tables as t
from tests.server.conftest import Api
from tests.server.support import T0

STEP_AT = 60
POINTS = 75


def commit_of(index: int) -> str:
    return f"{index + 1:040x}"


def series_runs(
    values: list[float],
    *,
    machine: str = "lab-01",
    fingerprints: list[str] | None = None,
    benchmarks: tuple[str, ...] = ("bench",),
    direction: str = "lower",
    first: int = 0,
) -> list[RunDocument]:
    """One run per value (commit i at T0 + i hours), each result's samples around the value."""
    runs = []
    for offset, value in enumerate(values):
        index = first + offset
        at = T0 + timedelta(hours=index)
        runs.append(
            RunDocument(
                project="demo",
                machine=machine,
                started_at=at + timedelta(minutes=5),
                finished_at=at + timedelta(minutes=6),
                source=Source(branch="main", commit=commit_of(index), commit_time=at),
                environment=Environment(
                    sections={"cpu": {"model": "Test CPU"}},
                    fingerprint=(fingerprints[offset] if fingerprints else "fp-a"),
                    fingerprint_keys=["cpu.model"],
                ),
                results=[
                    Result(
                        benchmark=name,
                        params={"clients": 4},
                        metric="latency" if direction == "lower" else "throughput",
                        unit="s" if direction == "lower" else "1/s",
                        direction=direction,
                        samples=[value * (1 + d) for d in (-0.001, 0.0, 0.001)],
                    )
                    for name in benchmarks
                ],
            )
        )
    return runs


def values(step: float = 0.10, n: int = POINTS, seed: int = 1, cv: float = 0.005) -> list[float]:
    rng = np.random.default_rng(seed)
    level = np.where(np.arange(n) < STEP_AT, 100.0, 100.0 * (1 + step))
    return list(level * (1 + cv * rng.standard_normal(n)))


def upload(api: Api, runs: list[RunDocument], auth: dict) -> None:
    for start in range(0, len(runs), 40):
        answer = api.batch(runs[start : start + 40], auth)
        assert answer.status_code == 200, answer.text
        assert {o["outcome"] for o in answer.json()["outcomes"]} == {"stored"}


def drained(api: Api, timeout: float = 30.0) -> dict:
    """Wait until this server's detection worker has nothing left to do."""
    deadline = time.monotonic() + timeout
    while True:
        status = api.get("/alerts/status").json()
        if status["pending"] == 0:
            return status
        assert time.monotonic() < deadline, f"detection did not finish: {status}"
        time.sleep(0.02)


def all_alerts(api: Api, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    answer = api.get("/alerts", admin=True, **params)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_a_ten_percent_step_raises_exactly_one_alert_at_the_right_commits(api: Api) -> None:
    auth = api.register()
    upload(api, series_runs(values()), auth)
    status = drained(api)
    assert status["errors"] == 0
    found = all_alerts(api)
    assert len(found) == 1
    alert = found[0]
    assert alert["commit_range"]["before"] == commit_of(STEP_AT - 1)
    assert alert["commit_range"]["after"] == commit_of(STEP_AT)
    assert alert["kind"] == "regression"  # latency, lower is better, went up
    assert alert["magnitude"] == pytest.approx(0.10, abs=0.01)
    low, high = alert["magnitude_ci"]
    assert low < alert["magnitude"] < high
    assert alert["p_value"] <= 0.001
    assert alert["noise"]["level"] in ("quiet", "moderate")
    assert alert["noise"]["cv"] > 0
    assert (alert["project"], alert["benchmark"], alert["metric"]) == ("demo", "bench", "latency")
    assert alert["params"] == {"clients": 4}
    assert (alert["machine"], alert["branch"], alert["state"]) == ("lab-01", "main", "new")

    # Anonymous readers see it too (the machine is approved), alone and in its group.
    one = api.get(f"/alerts/{alert['id']}")
    assert one.status_code == 200 and one.json()["history"][0]["state"] == "new"
    groups = api.get("/alert-groups", project="demo").json()["items"]
    assert len(groups) == 1
    assert groups[0]["commit_after"] == commit_of(STEP_AT)
    assert [a["id"] for a in groups[0]["alerts"]] == [alert["id"]]
    assert groups[0]["regressions"] == 1

    # More points of the same level do not raise it again.
    upload(api, series_runs(values(n=POINTS + 10)[POINTS:], first=POINTS), auth)
    drained(api)
    assert len(all_alerts(api)) == 1


def test_acknowledging_records_who_and_when(api: Api) -> None:
    auth = api.register()
    upload(api, series_runs(values()), auth)
    drained(api)
    (alert,) = all_alerts(api)
    path = f"/api/v1/alerts/{alert['id']}/state"

    refused = api.client.post(path, json={"state": "acknowledged"})
    assert refused.status_code == 401
    bad = api.client.post(path, json={"state": "gone"}, headers=api.admin)
    assert bad.status_code == 422

    answer = api.client.post(
        path, json={"state": "acknowledged", "note": "looking"}, headers=api.admin
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["state"], body["state_by"], body["state_note"]) == (
        "acknowledged",
        "admin",
        "looking",
    )
    assert body["state_at"] is not None

    fixed = api.client.post(path, json={"state": "fixed"}, headers=auth)
    assert fixed.status_code == 200
    history = api.get(f"/alerts/{alert['id']}").json()["history"]
    assert [(h["state"], h["by"]) for h in history] == [
        ("new", "perffarm"),
        ("acknowledged", "admin"),
        ("fixed", "machine:lab-01"),
    ]
    assert [a["id"] for a in all_alerts(api, state="fixed")] == [alert["id"]]
    assert all_alerts(api, state="new") == []
    assert api.get("/alerts", state="nonsense").status_code == 422
    assert api.get("/alerts/999999").status_code == 404


def test_noise_alone_raises_nothing(api: Api) -> None:
    auth = api.register()
    upload(api, series_runs(values(step=0.0, n=120, cv=0.01)), auth)
    status = drained(api)
    assert status["tracks_analysed"] >= 1
    assert all_alerts(api) == []


def test_a_fingerprint_change_breaks_the_series_instead_of_alerting(api: Api) -> None:
    auth = api.register()
    # New hardware at the step: the same machine, a faster-or-slower life from there on.
    fingerprints = ["fp-a"] * STEP_AT + ["fp-b"] * (POINTS - STEP_AT)
    upload(api, series_runs(values(), fingerprints=fingerprints), auth)
    drained(api)
    assert all_alerts(api) == []


def test_a_step_after_a_fingerprint_change_is_still_found(api: Api) -> None:
    auth = api.register()
    # 40 points on fp-a, then fp-b with a 10% step at STEP_AT inside fp-b's history.
    fingerprints = ["fp-a"] * 40 + ["fp-b"] * (POINTS + 20 - 40)
    data = values(n=POINTS + 20)
    data[:40] = [v * 0.8 for v in data[:40]]  # fp-a was another level altogether
    upload(api, series_runs(data, fingerprints=fingerprints), auth)
    drained(api)
    found = all_alerts(api)
    assert [a["commit_range"]["after"] for a in found] == [commit_of(STEP_AT)]
    assert found[0]["fingerprint"] == "fp-b"


def _series_id(api: Api, benchmark: str = "bench") -> int:
    (row,) = api.get("/series/keys", project="demo", benchmark=benchmark).json()["items"]
    return row["id"]


def test_a_new_normal_suppresses_the_alert_at_that_point(api: Api) -> None:
    auth = api.register()
    runs = series_runs(values())
    upload(api, runs[: STEP_AT + 1], auth)
    drained(api)
    series_id = _series_id(api)
    path = f"/api/v1/series/{series_id}/breaks"
    body = {"run_id": str(runs[STEP_AT].id), "note": "new compiler"}

    assert api.client.post(path, json=body).status_code == 401
    stranger = api.register("lab-02", owner="mallory")
    assert api.client.post(path, json=body, headers=stranger).status_code == 403
    unknown = api.client.post(path, json={"run_id": "nope"}, headers=auth)
    assert unknown.status_code == 422
    missing = api.client.post("/api/v1/series/999999/breaks", json=body, headers=api.admin)
    assert missing.status_code == 404

    made = api.client.post(path, json=body, headers=auth)  # the machine's owner may
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "machine:lab-01"
    upload(api, runs[STEP_AT + 1 :], auth)
    drained(api)
    assert all_alerts(api) == []
    listed = api.get(f"/series/{series_id}/breaks").json()["items"]
    assert [(b["run_id"], b["note"]) for b in listed] == [(str(runs[STEP_AT].id), "new compiler")]


def test_a_new_normal_after_the_alert_invalidates_it(api: Api) -> None:
    auth = api.register()
    runs = series_runs(values())
    upload(api, runs, auth)
    drained(api)
    (alert,) = all_alerts(api)
    made = api.client.post(
        f"/api/v1/series/{alert['series_id']}/breaks",
        json={"run_id": alert["commit_range"]["run_after"]},
        headers=api.admin,
    )
    assert made.status_code == 201
    assert made.json()["invalidated_alerts"] == [alert["id"]]
    drained(api)
    (after,) = all_alerts(api)
    assert (after["id"], after["state"], after["state_by"]) == (alert["id"], "invalid", "admin")


def test_alerts_of_one_commit_range_are_grouped_across_benchmarks(api: Api) -> None:
    auth = api.register()
    upload(api, series_runs(values(), benchmarks=("read", "write")), auth)
    # A throughput that went up at the same commit on another machine: an improvement.
    other = api.register("lab-02", owner="bob")
    upload(
        api,
        series_runs(values(seed=7), machine="lab-02", fingerprints=None, direction="higher"),
        other,
    )
    drained(api)
    found = all_alerts(api)
    assert len(found) == 3
    (group,) = api.get("/alert-groups").json()["items"]
    assert sorted(a["benchmark"] for a in group["alerts"]) == ["bench", "read", "write"]
    assert (group["regressions"], group["improvements"]) == (2, 1)
    assert group["states"] == {"new": 3}
    assert {a["group_id"] for a in found} == {group["id"]}
    assert api.get(f"/alert-groups/{group['id']}").json()["id"] == group["id"]


def test_recording_the_same_change_twice_keeps_one_alert(api: Api) -> None:
    """Two workers (two server processes) finding the same change record it once."""
    auth = api.register()
    upload(api, series_runs(values()), auth)
    drained(api)
    engine = api.client.app.state.engine
    # A second worker with a cold cache, as another process would be, analyses the same runs.
    other = DetectionWorker(engine)
    run_ids = [a["commit_range"]["run_after"] for a in all_alerts(api)]
    with engine.connect() as conn:
        machine_id = conn.execute(sa.select(t.machines.c.id)).scalar_one()
    other.enqueue_runs(machine_id, run_ids)
    other.drain()
    assert other.processed == 1
    assert len(all_alerts(api)) == 1
    # And the unique key holds even when the in-memory check is bypassed.
    (alert,) = all_alerts(api)
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.alerts).where(t.alerts.c.id == alert["id"])).mappings().one()
    fields = {name: row[name] for name in alerts.NewAlert.__dataclass_fields__}
    with engine.begin() as conn:
        assert alerts.record(conn, [alerts.NewAlert(**fields)]) == ([], [])


def test_unapproved_machines_raise_no_visible_alerts(api: Api) -> None:
    auth = api.register(approve=False)
    upload(api, series_runs(values()), auth)
    drained(api)
    assert all_alerts(api) == []


def test_alert_settings_change_the_threshold(api: Api) -> None:
    assert api.get("/alert-settings").status_code == 401
    changed = api.client.put(
        "/api/v1/alert-settings", json={"alert_min_magnitude": "15%"}, headers=api.admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["min_magnitude"] == pytest.approx(0.15)
    bad = api.client.put("/api/v1/alert-settings", json={"alert_p_value": "2"}, headers=api.admin)
    assert bad.status_code == 422
    auth = api.register()
    upload(api, series_runs(values()), auth)  # a 10% step is under the 15% limit now
    drained(api)
    assert all_alerts(api) == []


def test_runs_uploaded_out_of_order_give_the_same_single_alert(api: Api) -> None:
    auth = api.register()
    runs = series_runs(values())
    # The new level first, then the history before it arrives late (a backfill).
    upload(api, runs[40:], auth)
    drained(api)
    upload(api, runs[:40], auth)
    drained(api)
    found = all_alerts(api)
    assert [a["commit_range"]["after"] for a in found] == [commit_of(STEP_AT)]
    assert found[0]["commit_range"]["before"] == commit_of(STEP_AT - 1)
