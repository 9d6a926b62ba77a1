"""Property-based: hostile datapoints at both load-test doors, the v1 batch API
(``POST /api/v1/loadtests/{id}/datapoints``) and the original harness's routes
(``PUT /test/{id}/peer/{peerId}/metrics``, by the fast path and through the framework),
on SQLite and PostgreSQL.

Every answer is a 2xx or a 4xx naming the field (never a 5xx), and afterwards the test's
summary, its datapoint listing, the list of tests, the pages, ``/metrics`` and its finish
all answer, and finishing writes the test's ``{id}.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from perffarm.app import create_app
from perffarm.server.settings import Settings
from tests.hostile import fuzz_settings, hostile_text, metrics_text, name_text, visible_markup

ADMIN = "admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def client(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PERFFARM_LOADTEST_RESULTS", str(tmp_path / "results"))
    app = create_app(Settings(database=database, admin_token=ADMIN))
    with TestClient(app) as test_client:
        yield test_client


@st.composite
def batches(draw: st.DrawFn, sequence: int) -> str:
    points = []
    for _ in range(draw(st.integers(0, 4))):
        peer = json.dumps(draw(hostile_text(max_size=draw(st.sampled_from([40, 260])))))
        point = f'{{"peerId": {peer}, "metrics": {draw(metrics_text())}'
        if draw(st.booleans()):
            point += f', "timestamp": {draw(st.integers(-5, 2**63))}'
        points.append(point + "}")
    envelope = {
        "worker": draw(name_text(max_size=draw(st.sampled_from([30, 260])))),
        "incarnation": draw(name_text(max_size=30)),
        "sequence": sequence,
        "final": draw(st.booleans()),
    }
    body = json.dumps(envelope)[:-1] + ', "datapoints": [' + ",".join(points) + "]}"
    return body


def _refused(answer: Any) -> None:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    detail = answer.json().get("detail") or answer.json().get("status")
    assert detail and "\n" not in detail, answer.text[:500]


def _check_readable(client: TestClient, test_id: str) -> None:
    for path in (
        f"/api/v1/loadtests/{test_id}",
        f"/api/v1/loadtests/{test_id}/summary",
        f"/api/v1/loadtests/{test_id}/datapoints",
        "/api/v1/loadtests",
        f"/test/{test_id}",
        f"/api/v1/views/loadtests/{test_id}",
    ):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        answer.json()
    whole = client.get(f"/test/{test_id}", params={"dataPoints": "true"})
    assert whole.status_code == 200, whole.text[:500]
    json.loads(whole.text)
    for path in ("/loadtests", f"/loadtests/{test_id}"):
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert visible_markup(page.text) == [], path
    answer = client.get("/metrics", headers=AUTH)
    assert answer.status_code == 200, answer.text[:500]


def test_hostile_datapoints_are_refused_or_kept_and_the_test_still_finishes(
    client: TestClient, tmp_path: Path
) -> None:
    created: list[str] = []

    @fuzz_settings()
    @given(
        description=st.none() | hostile_text(max_size=300),
        v1=st.lists(st.data(), max_size=3),
        compat=st.lists(
            st.tuples(hostile_text(min_size=1, max_size=60), metrics_text(), st.booleans()),
            max_size=3,
        ),
        finish_by=st.sampled_from(["v1", "compat"]),
    )
    def load_test(
        description: str | None,
        v1: list[st.DataObject],
        compat: list[tuple[str, str, bool]],
        finish_by: str,
    ) -> None:
        test_id = f"hostile-{len(created)}"
        created.append(test_id)
        body: dict[str, Any] = {"id": test_id, "started": True}
        if description is not None:
            body["description"] = description
        answer = client.post("/api/v1/loadtests", json=body, headers=AUTH)
        if answer.status_code != 201:
            _refused(answer)
            body.pop("description")
            answer = client.post("/api/v1/loadtests", json=body, headers=AUTH)
            assert answer.status_code == 201, answer.text
        for sequence, data in enumerate(v1):
            answer = client.post(
                f"/api/v1/loadtests/{test_id}/datapoints",
                content=data.draw(batches(sequence)),
                headers={**AUTH, "Content-Type": "application/json"},
            )
            if answer.status_code != 200:
                _refused(answer)
        for peer, text, framework in compat:
            # With a credential the request takes the framework's way, else the fast path.
            answer = client.put(
                f"/test/{test_id}/peer/{quote(peer, safe='')}/metrics",
                content=text,
                headers=AUTH if framework else {},
            )
            if answer.status_code != 200:
                _refused(answer)
        _check_readable(client, test_id)
        if finish_by == "v1":
            answer = client.post(f"/api/v1/loadtests/{test_id}/finish", headers=AUTH)
            assert answer.status_code == 200, answer.text[:500]
            assert answer.json()["test"]["status"] == "finished"
        else:
            answer = client.put(f"/test/{test_id}/finish")
            assert answer.status_code == 200, answer.text[:500]
            json.loads(answer.text)
        written = tmp_path / "results" / f"{test_id}.json"
        assert written.exists()
        json.loads(written.read_text())
        _check_readable(client, test_id)

    load_test()
