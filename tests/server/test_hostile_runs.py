"""Property-based: run documents with hostile text and extreme numbers at the upload doors
(``POST /api/v1/runs`` and ``/api/v1/runs/batch``), on SQLite and PostgreSQL.

Whatever Hypothesis sends, the answer is a 2xx (the run is stored whole) or a 4xx naming
what is wrong (nothing of the run is stored), never a 5xx; and every stored run can then be
read back as a run document, downloaded, compared with itself and with another run, drawn
on its timelines and shown on every page, with no user text read as markup.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from perffarm.app import create_app
from perffarm.model import RunDocument
from tests.hostile import fuzz_settings
from tests.hostile_documents import T0, check_farm_pages, check_run, run_bodies
from tests.server.conftest import Api, make_settings

MACHINE = "fuzz-box"
OWNER = "<script>alert(1)</script> [/p] Ωwner"


class Farm:
    """One app on one database for all of a property's examples, with a machine to upload
    as and a first run to compare the others with."""

    def __init__(self, client: TestClient) -> None:
        self.api = Api(client)
        self.client = client
        self.machine = self.api.register(MACHINE, owner=OWNER)
        first = _plain_document()
        answer = self.post(first)
        assert answer.status_code == 201, answer.text
        self.first = first["id"]

    def post(self, document: dict[str, Any], raw: str | None = None) -> Any:
        return self.client.post(
            "/api/v1/runs",
            content=raw if raw is not None else json.dumps(document),
            headers={**self.machine, "Content-Type": "application/json"},
        )

    def batch(self, body: str) -> Any:
        return self.client.post(
            "/api/v1/runs/batch",
            content=body,
            headers={**self.machine, "Content-Type": "application/json"},
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def farm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    if request.param == "sqlite":
        database = str(tmp_path_factory.mktemp("hostile-runs") / "farm.db")
    else:
        database = request.getfixturevalue("postgres_url")
    with TestClient(create_app(make_settings(database))) as client:
        yield Farm(client)


def _plain_document() -> dict[str, Any]:
    return {
        "schema": "perffarm.run/1",
        "id": str(uuid.uuid4()),
        "project": "plain",
        "machine": MACHINE,
        "started_at": T0.isoformat(),
        "source": {"branch": "main", "commit": "a" * 40, "commit_time": T0.isoformat()},
        "results": [
            {"benchmark": "b", "metric": "m", "unit": "s", "samples": [1.0, 2.0, 3.0, 4.0]}
        ],
    }


def check_stored(farm: Farm, run_id: str, sent: dict[str, Any]) -> None:
    check_run(farm.client, run_id, RunDocument.model_validate(sent), other=farm.first)


def check_absent(farm: Farm, run_id: str) -> None:
    assert farm.client.get(f"/api/v1/runs/{run_id}").status_code == 404


def refused(answer: Any) -> None:
    """A 4xx with one line saying what is wrong."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    body = answer.json()
    message = body.get("detail") or body.get("message")
    assert message and "\n" not in message, body


# -- the properties ----------------------------------------------------------------------------


def test_one_run_is_stored_whole_or_refused_and_then_shown_everywhere(farm: Farm) -> None:
    @fuzz_settings()
    @given(body=run_bodies(MACHINE))
    def upload(body: tuple[dict[str, Any], str]) -> None:
        document, text = body
        answer = farm.post(document, raw=text)
        if answer.status_code in (200, 201):
            check_stored(farm, document["id"], document)
        else:
            refused(answer)
            check_absent(farm, document["id"])

    upload()
    check_farm_pages(farm.client, MACHINE, OWNER)


def test_a_batch_stores_each_run_whole_or_not_at_all(farm: Farm) -> None:
    @fuzz_settings(0.5)
    @given(body=st.lists(run_bodies(MACHINE), min_size=1, max_size=4))
    def upload(body: list[tuple[dict[str, Any], str]]) -> None:
        text = '{"runs": [' + ",".join(raw for _, raw in body) + "]}"
        answer = farm.batch(text)
        if answer.status_code != 200:
            refused(answer)
            for document, _ in body:
                check_absent(farm, document["id"])
            return
        outcomes = answer.json()["outcomes"]
        assert [o["index"] for o in outcomes] == list(range(len(body)))
        stored = {o["id"] for o in outcomes if o["outcome"] in ("stored", "already-stored")}
        for outcome, (document, _) in zip(outcomes, body, strict=True):
            assert outcome["outcome"] in ("stored", "already-stored", "invalid"), outcome
            if outcome["outcome"] == "invalid":
                assert outcome["errors"] and outcome["message"]
                if document["id"] not in stored:
                    check_absent(farm, document["id"])
            else:
                check_stored(farm, document["id"], document)

    upload()
    check_farm_pages(farm.client, MACHINE, OWNER)
