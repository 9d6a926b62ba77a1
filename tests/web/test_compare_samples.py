"""/compare and its JSON twin at a sample count beyond what exact formulas hold (issue 17,
case 3: 600 samples a side once answered 500), on the real app over SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from perffarm.analysis.statistics import summarize
from perffarm.model import Result
from perffarm.model.api import API_PREFIX
from tests.server.support import ADMIN, make_run

SAMPLES = 600


def test_compare_page_and_twin_give_a_verdict_at_600_samples_a_side(client: TestClient) -> None:
    made = client.post("/api/v1/machines", json={"name": "lab-01", "owner": "alice"})
    assert made.status_code == 201, made.text
    approve = client.post(
        "/api/v1/machines/lab-01/approve", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert approve.is_success, approve.text
    auth = {
        "Authorization": f"Bearer lab-01:{made.json()['secret']}",
        "Content-Type": "application/json",
    }
    rng = np.random.default_rng(600)
    ids = []
    for hour, level in ((0, 1.0), (1, 1.1)):
        samples = (level * (1 + rng.normal(0, 0.01, SAMPLES))).tolist()
        run = make_run(hour=hour, results=0)
        run.results = [
            Result(
                benchmark="read",
                metric="time",
                unit="s",
                samples=samples,
                summary=summarize(samples),
            )
        ]
        stored = client.post("/api/v1/runs", content=run.to_json(), headers=auth)
        assert stored.status_code == 201, stored.text
        ids.append(str(run.id))
    query = {"a": ids[0], "b": ids[1]}

    twin = client.get(f"{API_PREFIX}/views/compare", params=query)
    assert twin.status_code == 200, twin.text
    (row,) = twin.json()["rows"]
    assert row["verdict"] == "slower"

    page = client.get("/compare", params=query)
    assert page.status_code == 200, page.text
    assert 'data-verdict="slower"' in page.text
