"""Queries: runs filtered and paginated, one series, results per user, documents, attachments."""

from __future__ import annotations

import pytest

from perffarm.model import Attachment
from perffarm.model.api import SeriesPoint
from tests.server.conftest import Api
from tests.server.support import T0, make_run


def _all_pages(api: Api, path: str, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    items, cursor, pages = [], None, 0
    while True:
        page = api.get(path, **params, **({"cursor": cursor} if cursor else {})).json()
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            return items, pages  # type: ignore[return-value]


@pytest.fixture
def farm(api: Api) -> Api:
    """Two owners, three machines, runs on two branches over several commits."""
    alice1 = api.register("alice-1", owner="alice")
    alice2 = api.register("alice-2", owner="alice")
    bob = api.register("bob-1", owner="bob")
    api.batch(
        [
            make_run(machine="alice-1", hour=h, tag="nightly" if h % 2 else None)
            for h in (3, 1, 4, 2, 0)
        ],
        alice1,
    )
    api.batch([make_run(machine="alice-2", hour=h, fingerprint="fp-z") for h in range(3)], alice2)
    api.batch(
        [make_run(machine="bob-1", hour=h, branch="dev", project="other") for h in range(2)], bob
    )
    return api


def test_runs_are_paginated_newest_first_without_gaps_or_repeats(farm: Api) -> None:
    items, pages = _all_pages(farm, "/runs", limit=3)
    assert pages == 4
    assert len(items) == len({i["id"] for i in items}) == 10
    starts = [i["started_at"] for i in items]
    assert starts == sorted(starts, reverse=True)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"project": "other"}, 2),
        ({"machine": "alice-2"}, 3),
        ({"owner": "alice"}, 8),
        ({"branch": "dev"}, 2),
        ({"tag": "nightly"}, 2),
        ({"commit": f"{4:040x}"}, 1),
        ({"since": "2026-01-01T02:00:00Z", "until": "2026-01-01T04:00:00+00:00"}, 3),
        ({"owner": "alice", "machine": "bob-1"}, 0),
    ],
)
def test_runs_filters(farm: Api, params: dict, expected: int) -> None:
    assert len(farm.get("/runs", **params).json()["items"]) == expected


def test_a_bad_cursor_or_time_is_a_422_naming_the_parameter(farm: Api) -> None:
    bad_cursor = farm.get("/runs", cursor="garbage!")
    bad_time = farm.get("/runs", since="yesterday")
    assert bad_cursor.status_code == bad_time.status_code == 422
    assert "cursor" in bad_cursor.json()["detail"]
    assert bad_time.json()["errors"][0]["field"] == "query.since"


def test_series_is_ordered_by_commit_time_and_paginated(farm: Api) -> None:
    key = {"project": "demo", "benchmark": "bench", "metric": "latency", "params": '{"clients": 1}'}
    one_machine = farm.get("/series", **key, machine="alice-1", branch="main").json()["items"]
    assert [p["commit"] for p in one_machine] == [f"{h:040x}" for h in range(5)]
    assert [p["value"] for p in one_machine] == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert {p["machine"] for p in one_machine} == {"alice-1"}
    # The points are written without models for speed; they keep the documented shape.
    points = [SeriesPoint.model_validate(p) for p in one_machine]
    assert points[0].commit_time == T0

    by_fingerprint = farm.get("/series", **key, fingerprint="fp-a", branch="main").json()["items"]
    assert len(by_fingerprint) == 5
    everything, pages = _all_pages(farm, "/series", **key, limit=2)
    assert pages == 4 and len(everything) == 8  # both fingerprints of project demo, branch main
    times = [p["commit_time"] for p in everything]
    assert times == sorted(times)

    assert farm.get("/series", **key, branch="nope").json()["items"] == []
    bad = farm.get("/series", project="demo", benchmark="bench", metric="latency", params="[1]")
    assert bad.status_code == 422 and "params" in bad.json()["detail"]


def test_params_match_whatever_their_order(farm: Api) -> None:
    auth = farm.register("multi", owner="carol")
    run = make_run(machine="multi", results=0)
    run.results.append(
        make_run(results=1).results[0].model_copy(update={"params": {"b": 2, "a": "x"}})
    )
    farm.batch([run], auth)
    found = farm.get(
        "/series",
        project="demo",
        benchmark="bench",
        metric="latency",
        params='{"a": "x", "b": 2}',
        machine="multi",
    ).json()["items"]
    assert len(found) == 1


def test_results_of_one_user_and_of_everybody(farm: Api) -> None:
    alice, _ = _all_pages(farm, "/results", owner="alice", limit=7)
    everybody, _ = _all_pages(farm, "/results", limit=100)
    assert len(alice) == 8 * 3 and {r["owner"] for r in alice} == {"alice"}
    assert len(everybody) == 10 * 3
    assert alice[0]["samples"] is None
    with_samples = farm.get("/results", owner="bob", samples="true").json()["items"]
    assert sorted(r["samples"][0] for r in with_samples) == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    assert {r["params"]["clients"] for r in with_samples} == {0, 1, 2}


def test_machines_are_listed_by_name(farm: Api) -> None:
    items, pages = _all_pages(farm, "/machines", limit=2)
    assert [m["name"] for m in items] == ["alice-1", "alice-2", "bob-1"] and pages == 2
    assert [m["name"] for m in farm.get("/machines", owner="bob").json()["items"]] == ["bob-1"]


def test_attachment_download_has_its_media_type(api: Api) -> None:
    auth = api.register()
    log = Attachment.from_bytes("logs/build.log", b"configure: ok\n", media_type="text/plain")
    blob = Attachment.from_bytes("out.bin", bytes(range(256)))
    run = make_run(attachments=[log, blob])
    api.post_run(run, auth)

    text = api.get(f"/runs/{run.id}/attachments/logs/build.log")
    binary = api.get(f"/runs/{run.id}/attachments/out.bin")
    missing = api.get(f"/runs/{run.id}/attachments/nope.txt")

    assert text.status_code == 200 and text.content == b"configure: ok\n"
    assert text.headers["content-type"].startswith("text/plain")
    assert binary.content == bytes(range(256))
    assert binary.headers["content-type"] == "application/octet-stream"
    assert missing.status_code == 404


def test_unknown_run_is_404_and_a_malformed_id_is_422(api: Api) -> None:
    assert api.get("/runs/6b3c2a8e-0000-4000-8000-000000000001").status_code == 404
    assert api.get("/runs/not-a-uuid").status_code == 422


def test_health_and_openapi(api: Api) -> None:
    health = api.get("/health").json()
    assert health["status"] == "ok" and health["api_version"] == 1
    assert health["database"] in ("sqlite", "postgresql")
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/api/v1/runs", "/api/v1/runs/batch", "/api/v1/series", "/api/v1/ping"} <= set(paths)
