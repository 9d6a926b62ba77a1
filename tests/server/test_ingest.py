"""Ingest through the HTTP API: idempotency, conflicts, gzip, size limit, atomicity, auth."""

from __future__ import annotations

import gzip
import json
import math
from urllib.parse import quote

import sqlalchemy as sa
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.model import Attachment
from perffarm.server.store import tables as t
from perffarm.server.store.engine import make_engine
from tests.server.conftest import Api, make_settings
from tests.server.support import make_run


def _count(settings, table: sa.Table) -> int:  # type: ignore[no-untyped-def]
    engine = make_engine(settings.url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def test_one_run_is_stored_once_and_a_changed_copy_is_a_conflict(api: Api, settings) -> None:
    auth = api.register()
    run = make_run(results=4)

    first = api.post_run(run, auth)
    again = api.post_run(run, auth)
    changed = run.model_copy(update={"tag": "different"})
    conflict = api.post_run(changed, auth)

    assert (first.status_code, first.json()["outcome"]) == (201, "stored")
    assert (again.status_code, again.json()["outcome"]) == (200, "already-stored")
    assert (conflict.status_code, conflict.json()["outcome"]) == (409, "conflict")
    assert _count(settings, t.runs) == 1
    assert _count(settings, t.results) == 4
    # The document is kept as sent: the first version, whole.
    stored = api.get(f"/runs/{run.id}")
    assert stored.headers["content-type"].startswith("application/json")
    assert json.loads(stored.text) == json.loads(run.to_json())


def test_received_at_is_stamped_by_the_server(api: Api) -> None:
    auth = api.register()
    run = make_run()  # started in 2026-01-01, long before "now"
    api.post_run(run, auth)
    (summary,) = api.get("/runs").json()["items"]
    assert summary["started_at"].startswith("2026-01-01T00:05")
    assert summary["received_at"] > summary["started_at"]


def test_gzip_body_is_accepted(api: Api) -> None:
    auth = api.register()
    run = make_run()
    answer = api.client.post(
        "/api/v1/runs",
        content=gzip.compress(run.to_json().encode()),
        headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 201, answer.text
    assert api.get(f"/runs/{run.id}").status_code == 200


def test_corrupt_gzip_is_a_clear_400(api: Api) -> None:
    auth = api.register()
    answer = api.client.post(
        "/api/v1/runs",
        content=b"\x1f\x8bnot really gzip",
        headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 400
    assert "gzip" in answer.json()["detail"]


def test_too_large_bodies_are_refused_with_413_plain_or_compressed(database: str) -> None:
    app = create_app(make_settings(database, max_body=64 * 1024))
    with TestClient(app) as client:
        api = Api(client)
        auth = api.register()
        big = make_run(results=400)
        text = big.to_json().encode()
        assert len(text) > 64 * 1024
        plain = client.post(
            "/api/v1/runs", content=text, headers={**auth, "Content-Type": "application/json"}
        )
        # Compresses well below the limit but expands above it: refused just the same.
        packed = gzip.compress(text)
        assert len(packed) < 64 * 1024
        bomb = client.post(
            "/api/v1/runs",
            content=packed,
            headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert plain.status_code == 413 and bomb.status_code == 413
        assert "limit of 0.0625 MiB" in plain.json()["detail"]
        assert api.get("/runs", admin=True).json()["items"] == []


def test_batch_stores_the_valid_runs_and_names_the_bad_fields_of_the_invalid(
    api: Api, settings
) -> None:
    auth = api.register()
    good = [make_run(hour=1), make_run(hour=2)]
    bad = good[0].model_dump(mode="json", by_alias=True)
    bad["id"] = "6b3c2a8e-0000-4000-8000-000000000001"
    bad["results"][0]["metric"] = ""
    del bad["project"]

    answer = api.batch([good[0], bad, good[1], good[0]], auth)

    assert answer.status_code == 200, answer.text
    outcomes = answer.json()["outcomes"]
    assert [o["outcome"] for o in outcomes] == ["stored", "invalid", "stored", "already-stored"]
    fields = {e["field"] for e in outcomes[1]["errors"]}
    assert fields == {"body.runs.1.project", "body.runs.1.results.0.metric"}
    assert outcomes[1]["id"] == bad["id"]
    assert _count(settings, t.runs) == 2
    assert _count(settings, t.results) == 6


def test_a_changed_copy_later_in_the_same_batch_is_a_conflict_not_already_stored(
    api: Api, settings
) -> None:
    auth = api.register()
    run = make_run(results=2)
    changed = run.model_copy(update={"tag": "different"})

    answer = api.batch([run, changed, run], auth)

    assert answer.status_code == 200, answer.text
    outcomes = answer.json()["outcomes"]
    assert [o["outcome"] for o in outcomes] == ["stored", "conflict", "already-stored"]
    assert "earlier in this batch" in outcomes[1]["message"]
    assert _count(settings, t.runs) == 1
    assert json.loads(api.get(f"/runs/{run.id}").text) == json.loads(run.to_json())


def test_invalid_single_run_is_a_422_naming_each_field(api: Api) -> None:
    auth = api.register()
    doc = make_run().model_dump(mode="json", by_alias=True)
    doc["results"][0]["samples"] = ["x"]
    doc["surprise"] = 1
    answer = api.client.post("/api/v1/runs", json=doc, headers=auth)
    assert answer.status_code == 422
    body = answer.json()
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"body.results.0.samples.0", "body.surprise"}
    assert "body.surprise" in body["detail"]


def test_wrong_or_missing_machine_secret_is_401(api: Api, settings) -> None:
    api.register()
    run = make_run()
    wrong = api.post_run(run, {"Authorization": "Bearer lab-01:not-the-secret"})
    unknown = api.post_run(run, {"Authorization": "Bearer nobody:secret"})
    missing = api.post_run(run, {})
    assert wrong.status_code == unknown.status_code == missing.status_code == 401
    assert "wrong machine name or secret" in wrong.json()["detail"]
    assert _count(settings, t.runs) == 0


def test_run_is_attributed_to_the_authenticated_machine(api: Api) -> None:
    auth = api.register("lab-02", owner="bob")
    run = make_run(machine="some-other-name")
    assert api.post_run(run, auth).status_code == 201
    (summary,) = api.get("/runs").json()["items"]
    assert (summary["machine"], summary["owner"]) == ("lab-02", "bob")
    # ... and the document itself is not rewritten.
    assert json.loads(api.get(f"/runs/{run.id}").text)["machine"] == "some-other-name"


def test_unapproved_machine_runs_are_stored_but_hidden_until_approval(api: Api) -> None:
    auth = api.register("new-box", approve=False)
    run = make_run(machine="new-box")
    answer = api.post_run(run, auth)
    assert answer.status_code == 201
    assert answer.json()["machine_approved"] is False
    assert "not approved" in answer.json()["message"]

    assert api.get("/runs").json()["items"] == []
    assert api.get(f"/runs/{run.id}").status_code == 404
    assert api.get("/results").json()["items"] == []
    assert (
        api.get(
            "/series", project="demo", benchmark="bench", metric="latency", params='{"clients":0}'
        ).json()["items"]
        == []
    )
    assert api.get("/machines").json()["items"] == []
    admin_view = api.get("/runs", admin=True).json()["items"]
    assert [r["hidden"] for r in admin_view] == [True]

    api.client.post("/api/v1/machines/new-box/approve", headers=api.admin)
    assert [r["id"] for r in api.get("/runs").json()["items"]] == [str(run.id)]
    assert api.get(f"/runs/{run.id}").status_code == 200


def test_fingerprint_change_is_recorded_and_metadata_updated_in_place(api: Api, settings) -> None:
    auth = api.register()
    api.batch([make_run(hour=1, fingerprint="fp-a")], auth)
    api.batch(
        [
            make_run(hour=2, fingerprint="fp-b", sections={"cpu": {"model": "New CPU"}}),
            make_run(hour=3, fingerprint="fp-b", sections={"cpu": {"model": "New CPU", "mhz": 1}}),
        ],
        auth,
    )
    # A late upload of an older run changes neither the fingerprint nor the metadata.
    api.batch([make_run(hour=0, fingerprint="fp-old")], auth)

    machine = api.get("/machines/lab-01").json()
    assert machine["fingerprint"] == "fp-b"
    assert machine["metadata"] == {"cpu": {"model": "New CPU", "mhz": 1}}
    assert [(c["old"], c["new"]) for c in machine["fingerprint_changes"]] == [
        (None, "fp-a"),
        ("fp-a", "fp-b"),
    ]
    assert _count(settings, t.machines) == 1


def test_probe_figures_are_kept_on_the_machine_and_the_runs(api: Api) -> None:
    auth = api.register()
    probe = {
        "transactions": 900,
        "seconds": 1.0,
        "transactions_per_second": 900.0,
        "latency_p50_ms": 1.0,
        "latency_p90_ms": 1.5,
        "latency_p99_ms": 2.0,
        "latency_max_ms": 3.0,
    }
    api.batch([make_run()], auth, probe=probe)
    assert api.get("/machines/lab-01").json()["probe"]["transactions_per_second"] == 900.0
    assert api.get("/runs").json()["items"][0]["probe"]["latency_p99_ms"] == 2.0


def test_registration_names_are_unique_and_admin_only_mode_needs_the_token(database: str) -> None:
    app = create_app(make_settings(database, registration="admin"))
    with TestClient(app) as client:
        api = Api(client)
        refused = client.post("/api/v1/machines", json={"name": "x1", "owner": "o"})
        assert refused.status_code == 401 and "admins only" in refused.json()["detail"]
        ok = client.post("/api/v1/machines", json={"name": "x1", "owner": "o"}, headers=api.admin)
        assert ok.status_code == 201 and len(ok.json()["secret"]) >= 43  # >= 256 bits
        twice = client.post(
            "/api/v1/machines", json={"name": "x1", "owner": "o"}, headers=api.admin
        )
        assert twice.status_code == 409
        bad_name = client.post(
            "/api/v1/machines", json={"name": "a:b", "owner": "o"}, headers=api.admin
        )
        assert bad_name.status_code == 422
        engine = make_engine(make_settings(database).url)
        with engine.connect() as conn:
            stored = conn.execute(sa.select(t.machines.c.secret_hash)).scalar_one()
        engine.dispose()
        assert ok.json()["secret"] not in stored and len(stored) == 64


def test_values_the_database_cannot_index_are_refused_alike_on_both(api: Api, settings) -> None:
    auth = api.register()
    long_branch = make_run(branch="b" * 201)
    nul_metric = make_run()
    nul_metric.results[0].metric = "lat\x00ency"
    single = api.post_run(long_branch, auth)
    batch = api.batch([nul_metric, make_run(hour=1)], auth).json()["outcomes"]
    assert single.status_code == 422
    assert single.json()["errors"][0]["field"] == "body.source.branch"
    assert [o["outcome"] for o in batch] == ["invalid", "stored"]
    assert batch[0]["errors"][0]["field"] == "body.runs.0.results.0.metric"
    assert _count(settings, t.runs) == 1


def test_times_out_of_range_in_utc_are_field_errors(api: Api) -> None:
    auth = api.register()
    doc = make_run().model_dump(mode="json", by_alias=True)
    doc["finished_at"] = "0001-01-01T00:00:00+00:01"  # before year 1 once in UTC
    answer = api.client.post("/api/v1/runs", json=doc, headers=auth)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.finished_at"
    assert api.get("/runs", since="0001-01-01T00:00:00+00:01").status_code == 422


def test_params_that_are_not_finite_numbers_are_refused_naming_the_field(api: Api) -> None:
    """Issue 17, case 4: NaN, Infinity or 1e309 in params used to be stored, and every
    comparison of that run answered 500 from then on."""
    auth = api.register()
    text = make_run().to_json()
    before = api.get("/runs").json()["items"]
    for bad in ("NaN", "Infinity", "-Infinity", "1e309"):
        document = text.replace('"params":{}', '"params":{"p":' + bad + "}", 1)
        assert document != text
        answer = api.client.post(
            "/api/v1/runs", content=document, headers={**auth, "Content-Type": "application/json"}
        )
        assert answer.status_code == 422, (bad, answer.text)
        assert "finite" in answer.text and "params" in answer.json()["errors"][0]["field"]
        batch = api.client.post(
            "/api/v1/runs/batch",
            content='{"runs":[' + document + "]}",
            headers={**auth, "Content-Type": "application/json"},
        )
        assert batch.status_code == 200 and batch.json()["outcomes"][0]["outcome"] == "invalid"
    assert api.get("/runs").json()["items"] == before


def test_figures_that_are_not_finite_are_refused_wherever_the_document_has_them(
    api: Api,
) -> None:
    """Found by tests/server/test_hostile_runs.py: a summary, a series or a build step with
    NaN or Infinity was stored as null, and the stored document no longer read back as a
    run document (every field but samples and params took them)."""
    auth = api.register()
    run = make_run()
    places = {
        "results.0.summary.median": lambda d, v: d["results"][0]["summary"].update(median=v),
        "series.0.values.0": lambda d, v: d.update(
            series=[{"name": "cpu", "unit": "%", "t": [0.0], "values": [v]}]
        ),
        "build.steps.0.seconds": lambda d, v: d.update(
            build={"steps": [{"name": "make", "seconds": v}]}
        ),
    }
    for field, put in places.items():
        for bad in (math.nan, math.inf):
            document = run.model_dump(mode="json", by_alias=True)
            put(document, bad)
            answer = api.client.post(
                "/api/v1/runs",
                content=json.dumps(document),
                headers={**auth, "Content-Type": "application/json"},
            )
            assert answer.status_code == 422, (field, answer.text)
            assert answer.json()["errors"][0]["field"] == f"body.{field}", answer.text
            assert "finite" in answer.json()["errors"][0]["message"]
    assert api.get("/runs").json()["items"] == []


def test_attachments_of_any_name_download_and_bad_ones_are_refused(api: Api) -> None:
    """Issue 17, case 5: names outside Latin-1 answered 500 on download; a media type with
    CR/LF broke the connection; a second attachment of one name was unreachable."""
    auth = api.register()
    files = {
        "résumé✓.txt": ("text/plain; charset=utf-8", "Grüße".encode()),
        "日本語.txt": ("text/plain", b"ok"),
        'quote".log': ("application/octet-stream", b"\x00\x01"),
    }
    run = make_run(
        attachments=[
            Attachment.from_bytes(name, data, media_type=kind)
            for name, (kind, data) in files.items()
        ]
    )
    assert api.post_run(run, auth).status_code == 201
    for name, (kind, data) in files.items():
        answer = api.client.get(f"/api/v1/runs/{run.id}/attachments/{quote(name)}")
        assert answer.status_code == 200, (name, answer.text)
        assert answer.content == data and answer.headers["content-type"].startswith(kind)
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith("attachment; filename=")
        if not name.isascii():
            assert "filename*=UTF-8''" + quote(name, safe="") in disposition

    good = Attachment.from_bytes("a.txt", b"x").model_dump()
    for bad, field in (
        ({**good, "media_type": "text/plain\r\nX-Injected: 1"}, "media_type"),
        ({**good, "name": "line\nbreak.txt"}, "name"),
    ):
        document = make_run().model_dump(mode="json", by_alias=True)
        document["attachments"] = [bad]
        answer = api.client.post("/api/v1/runs", json=document, headers=auth)
        assert answer.status_code == 422, answer.text
        assert any(field in e["field"] for e in answer.json()["errors"]), answer.text
    twice = make_run().model_dump(mode="json", by_alias=True)
    twice["attachments"] = [good, good]
    answer = api.client.post("/api/v1/runs", json=twice, headers=auth)
    assert answer.status_code == 422 and "names are unique" in answer.text


def test_a_nul_character_gets_one_answer_on_both_databases(api: Api) -> None:
    """Issue 17, case 11: SQLite kept what PostgreSQL refused."""
    answer = api.client.post("/api/v1/machines", json={"name": "m-1", "owner": "o\x00x"})
    assert answer.status_code == 422 and "NUL" in answer.text
    answer = api.client.post(
        "/api/v1/users", json={"name": "bob", "display_name": "B\x00"}, headers=api.admin
    )
    assert answer.status_code == 422 and "NUL" in answer.text
    assert api.get("/machines", admin=True).json()["items"] == []


def test_a_gzip_body_with_bytes_after_its_end_is_refused(api: Api) -> None:
    """Issue 17, case 11: trailing bytes after the gzip stream were ignored."""
    auth = api.register()
    body = gzip.compress(make_run().to_json().encode()) + b"trailing"
    answer = api.client.post(
        "/api/v1/runs",
        content=body,
        headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 400 and "after the end" in answer.json()["detail"]
    assert api.get("/runs", admin=True).json()["items"] == []
