"""Data over years (issue 18): retention that keeps summaries, deletions with permissions
and an audit trail, retired machines, on SQLite and PostgreSQL through the real app and the
real commands."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from perffarm.commands import main
from perffarm.model import Attachment, RunDocument
from perffarm.model.lifecycle import RetentionPolicy, parse_retention
from perffarm.server.core.timeutil import now, to_db
from perffarm.server.services.lifecycle import Retention, RetentionWorker, summary_only
from perffarm.server.store import tables as t
from perffarm.server.store.transactions import writing
from tests.auth.conftest import Farm
from tests.server.support import ADMIN, make_run

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def _aged(days: int, *, machine: str = "lab-01", **kwargs) -> RunDocument:  # type: ignore[no-untyped-def]
    run = make_run(machine=machine, hour=days, results=3, **kwargs)
    data = run.model_dump(mode="json", by_alias=True)
    started = now() - timedelta(days=days)
    data["started_at"] = started.isoformat()
    data["finished_at"] = (started + timedelta(minutes=1)).isoformat()
    data["source"]["commit_time"] = (started - timedelta(hours=1)).isoformat()
    return RunDocument.model_validate(data)


def _register(farm: Farm, name: str, owner_token: str | None = None) -> dict[str, str]:
    headers = farm.bearer(owner_token) if owner_token else {}
    made = farm.client.post("/api/v1/machines", json={"name": name, "owner": "x"}, headers=headers)
    assert made.status_code == 201, made.text
    assert (
        farm.client.post(f"/api/v1/machines/{name}/approve", headers=ADMIN_HEADERS).status_code
        == 200
    )
    return {"Authorization": f"Bearer {name}:{made.json()['secret']}"}


def _status(farm: Farm, method: str, path: str, **kwargs) -> int:  # type: ignore[no-untyped-def]
    return farm.client.request(method, path, headers=ADMIN_HEADERS, **kwargs).status_code


def _upload(farm: Farm, run: RunDocument, machine: dict[str, str]):  # type: ignore[no-untyped-def]
    return farm.client.post(
        "/api/v1/runs",
        content=run.to_json(),
        headers={**machine, "Content-Type": "application/json"},
    )


def _document(farm: Farm, run_id: object) -> dict:
    answer = farm.client.get(f"/api/v1/runs/{run_id}", headers=ADMIN_HEADERS)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _listing(farm: Farm) -> dict[str, dict]:
    page = farm.client.get("/api/v1/runs", params={"limit": 1000}, headers=ADMIN_HEADERS).json()
    return {item["id"]: item for item in page["items"]}


def _series_points(farm: Farm) -> int:
    answer = farm.client.get(
        "/api/v1/series",
        params={
            "project": "demo",
            "benchmark": "bench",
            "metric": "latency",
            "params": '{"clients":0}',
            "limit": 10000,
        },
        headers=ADMIN_HEADERS,
    )
    assert answer.status_code == 200, answer.text
    return len(answer.json()["items"])


def test_retention_keeps_summaries_charts_and_comparisons_and_what_is_marked(
    farm: Farm, database: str, capsys
) -> None:  # type: ignore[no-untyped-def]
    lab = _register(farm, "lab-01")
    attachment = Attachment.from_bytes("perf.txt", b"x" * 5000, media_type="text/plain")
    runs = {days: _aged(days, attachments=[attachment]) for days in (10, 45, 89, 91, 200, 400)}
    kept = _aged(300)
    tagged = _aged(250, tag="v1.0")
    release = _aged(350, branch="REL_1")
    for run in [*runs.values(), kept, tagged, release]:
        assert _upload(farm, run, lab).status_code == 201
    assert (
        farm.client.put(
            f"/api/v1/runs/{kept.id}/keep", json={"keep": True}, headers=ADMIN_HEADERS
        ).status_code
        == 200
    )
    assert (
        farm.client.put(
            "/api/v1/projects/demo/keep", json={"branch": "REL_1"}, headers=ADMIN_HEADERS
        ).status_code
        == 200
    )
    before = {run_id: _document(farm, run_id) for run_id in _listing(farm)}
    points_before = _series_points(farm)

    # A dry run counts exactly what the real one removes, and changes nothing.
    assert (
        main(
            ["db", "prune", "--database", database, "--keep-samples", "90d", "--dry-run", "--json"]
        )
        == 0
    )
    dry = json.loads(capsys.readouterr().out)
    assert {run_id: _document(farm, run_id) for run_id in before} == before
    assert main(["db", "usage", "--database", database, "--keep-samples", "90d", "--json"]) == 0
    usage = json.loads(capsys.readouterr().out)
    assert usage["would_remove"]["runs_reduced"] == 3
    samples_before = sum(group["samples"] for group in usage["projects"])

    assert main(["db", "prune", "--database", database, "--keep-samples", "90d", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["runs_reduced"] == dry["runs_reduced"] == 3  # 91, 200 and 400 days old
    assert done["samples_removed"] == dry["samples_removed"] == 3 * 3 * 3
    assert done["attachments_removed"] == dry["attachments_removed"] == 3

    listing = _listing(farm)
    for days, run in runs.items():
        document = _document(farm, run.id)
        if days > 90:
            assert listing[str(run.id)]["summary_only"]
            assert document["attachments"] == []
            for result in document["results"]:
                assert result["samples"] == [] and result["summary"]["n"] == 3
                assert result["summary"]["median"] == pytest.approx(2.0 + days)
        else:
            assert document == before[str(run.id)] and not listing[str(run.id)]["summary_only"]
    for whole in (kept, tagged, release):
        assert _document(farm, whole.id) == before[str(whole.id)]
    assert listing[str(kept.id)]["keep"]

    # Still on the chart, still comparable, still rendered.
    assert _series_points(farm) == points_before
    old, new = runs[400].id, runs[10].id
    compared = farm.client.get(f"/api/v1/views/compare?a={old}&b={new}", headers=ADMIN_HEADERS)
    assert compared.status_code == 200, compared.text
    page = farm.client.get(f"/runs/{old}", headers=ADMIN_HEADERS)
    assert page.status_code == 200

    # What is left: fewer samples; the prune is in the audit trail; a second prune is a no-op.
    assert main(["db", "usage", "--database", database, "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert sum(g["samples"] for g in after["projects"]) == samples_before - 27
    assert main(["db", "audit", "--database", database, "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert events[0]["action"] == "prune" and "3 runs reduced" in events[0]["detail"]
    assert main(["db", "prune", "--database", database, "--keep-samples", "90d", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs_reduced"] == 0


def test_a_prune_shrinks_a_sqlite_file_after_vacuum(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from tests.auth.conftest import make_farm

    database = str(tmp_path / "farm.db")
    for farm in make_farm(database):
        lab = _register(farm, "lab-01")
        for days in range(100, 160):
            run = _aged(days)
            data = run.model_dump(mode="json", by_alias=True)
            for result in data["results"]:
                result["samples"] = [float(i) for i in range(2000)]
                result["summary"] = None
            assert _upload(farm, RunDocument.model_validate(data), lab).status_code == 201
    size = Path(database).stat().st_size
    assert main(["db", "prune", "--database", database, "--keep-samples", "90d", "--vacuum"]) == 0
    capsys.readouterr()
    assert Path(database).stat().st_size < size / 3


def test_datapoints_of_old_load_tests_go_and_their_summary_stays(
    farm: Farm, database: str, capsys
) -> None:  # type: ignore[no-untyped-def]
    client = farm.client
    for test_id in ("old", "recent"):
        assert (
            client.post(
                "/api/v1/loadtests", json={"id": test_id, "started": True}, headers=ADMIN_HEADERS
            ).status_code
            == 201
        )
        points = [{"peerId": "p", "metrics": {"sent": n}} for n in range(50)]
        batch = {"worker": "w", "incarnation": "i", "sequence": 0, "datapoints": points}
        assert (
            client.post(
                f"/api/v1/loadtests/{test_id}/datapoints", json=batch, headers=ADMIN_HEADERS
            ).status_code
            == 200
        )
        assert (
            client.post(f"/api/v1/loadtests/{test_id}/finish", headers=ADMIN_HEADERS).status_code
            == 200
        )
    summary_before = client.get("/api/v1/loadtests/old/summary", headers=ADMIN_HEADERS).json()
    long_ago = int((now() - timedelta(days=40)).timestamp() * 1000)
    with farm.engine.connect() as conn, writing(conn):
        conn.execute(
            t.loadtests.update().where(t.loadtests.c.id == "old").values(finished=long_ago)
        )
    assert main(["db", "prune", "--database", database, "--keep-datapoints", "30d", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["loadtests_reduced"] == 1 and report["datapoints_removed"] == 50
    assert (
        client.get("/api/v1/loadtests/old/summary", headers=ADMIN_HEADERS).json() == summary_before
    )
    assert client.get("/api/v1/loadtests/old", headers=ADMIN_HEADERS).status_code == 200
    recent = client.get("/api/v1/loadtests/recent/datapoints", headers=ADMIN_HEADERS).json()
    assert len(recent["datapoints"]) == 50


def test_deletion_follows_ownership_and_is_audited(farm: Farm) -> None:
    alice, bob = farm.token(farm.alice), farm.token(farm.bob)
    lab = _register(farm, "alice-box", owner_token=alice)
    other = _register(farm, "bob-box", owner_token=bob)
    runs = [_aged(days, machine="alice-box") for days in (1, 2, 3)]
    for run in runs:
        assert _upload(farm, run, lab).status_code == 201
    target = f"/api/v1/runs/{runs[0].id}"

    assert farm.client.delete(target).status_code == 401
    assert farm.client.delete(target, headers=farm.bearer(bob)).status_code == 403
    assert farm.client.delete(target, headers=other).status_code == 403
    assert (
        farm.client.delete(target, headers=farm.bearer(farm.token(farm.alice, "read"))).status_code
        == 403
    )
    assert _document(farm, runs[0].id)  # still there
    answer = farm.client.delete(target, headers=farm.bearer(alice))
    assert answer.status_code == 200, answer.text
    assert farm.client.get(target, headers=ADMIN_HEADERS).status_code == 404
    assert farm.client.delete(target, headers=farm.bearer(alice)).status_code == 404

    # Its id comes back only from its own machine.
    refused = _upload(farm, runs[0].model_copy(update={"machine": "bob-box"}), other)
    assert refused.status_code == 409 and "only the machine that sent it" in refused.text
    assert _upload(farm, runs[0], lab).status_code == 201

    # An admin's deletion is recorded with who did it.
    assert (
        farm.client.delete(
            f"/api/v1/runs/{runs[1].id}", headers=farm.bearer(farm.token(farm.root, "admin"))
        ).status_code
        == 200
    )
    events = farm.client.get("/api/v1/admin/audit", headers=ADMIN_HEADERS).json()["items"]
    assert [(e["actor"], e["action"], e["target"]) for e in events[:2]] == [
        ("user:root", "delete run", str(runs[1].id)),
        ("user:alice", "delete run", str(runs[0].id)),
    ]
    assert farm.client.get("/api/v1/admin/audit", headers=farm.bearer(alice)).status_code == 403

    # A project goes only by an admin's hand.
    assert (
        farm.client.delete("/api/v1/projects/demo", headers=farm.bearer(alice)).status_code == 403
    )
    gone = farm.client.delete("/api/v1/projects/demo", headers=ADMIN_HEADERS)
    assert gone.json() == {"project": "demo", "runs_deleted": 2}
    assert _listing(farm) == {}
    assert farm.client.delete("/api/v1/projects/demo", headers=ADMIN_HEADERS).status_code == 404


def test_a_retired_machine_keeps_its_history_and_uploads_no_more(farm: Farm) -> None:
    alice = farm.token(farm.alice)
    lab = _register(farm, "alice-box", owner_token=alice)
    first = _aged(5, machine="alice-box")
    assert _upload(farm, first, lab).status_code == 201
    assert (
        farm.client.post(
            "/api/v1/machines/alice-box/retire", headers=farm.bearer(farm.token(farm.bob))
        ).status_code
        == 403
    )
    retired = farm.client.post("/api/v1/machines/alice-box/retire", headers=farm.bearer(alice))
    assert retired.status_code == 200 and retired.json()["retired_at"]
    refused = _upload(farm, _aged(4, machine="alice-box"), lab)
    assert refused.status_code == 403 and "retired" in refused.json()["detail"]
    as_user = farm.client.post(
        "/api/v1/runs",
        content=_aged(3, machine="alice-box").to_json(),
        headers={
            **farm.bearer(alice),
            "X-Perffarm-Machine": "alice-box",
            "Content-Type": "application/json",
        },
    )
    assert as_user.status_code == 403
    assert _document(farm, first.id)["machine"] == "alice-box"
    assert len(_listing(farm)) == 1


def test_deleting_a_user_ends_their_tokens_and_keeps_their_machines(
    farm: Farm, database: str, capsys
) -> None:  # type: ignore[no-untyped-def]
    bob = farm.token(farm.bob)
    box = _register(farm, "bob-box", owner_token=bob)
    assert farm.client.get("/api/v1/me", headers=farm.bearer(bob)).status_code == 200
    assert main(["user", "delete", "bob", "--database", database]) == 0
    capsys.readouterr()
    assert farm.client.get("/api/v1/me", headers=farm.bearer(bob)).status_code == 401
    assert farm.client.get("/api/v1/machines/bob-box", headers=ADMIN_HEADERS).status_code == 200
    assert _upload(farm, _aged(1, machine="bob-box"), box).status_code == 201
    assert farm.client.delete("/api/v1/users/alice", headers=farm.bearer(bob)).status_code == 401
    assert farm.client.delete("/api/v1/users/alice", headers=ADMIN_HEADERS).status_code == 200
    events = farm.client.get("/api/v1/admin/audit", headers=ADMIN_HEADERS).json()["items"]
    assert {e["target"] for e in events if e["action"] == "delete user"} == {"alice", "bob"}


def test_expired_sign_in_rows_go_and_one_server_process_prunes_at_a_time(farm: Farm) -> None:
    for _ in range(3):
        assert (
            farm.client.post(
                "/oauth/device_authorization", data={"client_id": "perffarm-cli"}
            ).status_code
            == 200
        )
    with farm.engine.connect() as conn, writing(conn):
        conn.execute(t.device_codes.update().values(expires_at=to_db(now() - timedelta(minutes=1))))
    worker = RetentionWorker(
        Retention(farm.engine, RetentionPolicy()), interval=3600, first_after=3600
    )
    if farm.engine.dialect.name == "postgresql":
        with farm.engine.connect() as other:
            other.execute(sa.text("SELECT pg_advisory_lock(7316018)"))
            assert worker.run_once() is None  # another process holds the pass
            other.execute(sa.text("SELECT pg_advisory_unlock(7316018)"))
            other.commit()
    report = worker.run_once()
    assert report is not None and report.device_codes_removed == 3
    with farm.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.device_codes)).scalar_one() == 0
        )


def test_retention_text_and_documents_reduced_to_summaries() -> None:
    assert parse_retention("90d") == timedelta(days=90)
    assert parse_retention("12W") == timedelta(weeks=12)
    assert parse_retention("1y") == timedelta(days=365)
    assert parse_retention("forever") is None
    for wrong in ("90", "0d", "-1d", "ninety days", "1e3d"):
        with pytest.raises(ValueError, match="not a retention"):
            parse_retention(wrong)
    run = make_run(results=2)
    data = run.model_dump(mode="json", by_alias=True)
    for result in data["results"]:
        result["summary"] = None
        result["warmup_samples"] = [9.0]
    reduced, samples, attachments = summary_only(json.dumps(data))
    document = RunDocument.model_validate_json(reduced)  # still a valid run document
    assert samples == 6 and attachments == 0
    assert all(
        r.samples == [] and r.warmup_samples == [] and r.summary.n == 3 for r in document.results
    )
    assert document.id == run.id and uuid.UUID(str(document.id))


def test_bad_retention_is_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert (
        main(["db", "prune", "--database", str(tmp_path / "f.db"), "--keep-samples", "soon"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a retention" in err
    assert main(["server", "--database", str(tmp_path / "f.db"), "--keep-datapoints", "0d"]) == 2
    assert "--keep-datapoints" in capsys.readouterr().err


def test_the_data_page_shows_admins_the_policy_and_the_audit_trail(farm: Farm) -> None:
    lab = _register(farm, "lab-01")
    run = _aged(5, project="p<b>x")
    assert _upload(farm, run, lab).status_code == 201
    assert _status(farm, "DELETE", f"/api/v1/runs/{run.id}") == 200
    page = farm.client.get("/admin/data", headers=ADMIN_HEADERS)
    assert page.status_code == 200
    assert "forever" in page.text and "delete run" in page.text and str(run.id) in page.text
    assert "p&lt;b&gt;x" in page.text and "p<b>x" not in page.text
    twin = farm.client.get("/api/v1/views/admin/data", headers=ADMIN_HEADERS).json()
    assert twin["audit"][0]["target"] == str(run.id)
    user = farm.bearer(farm.token(farm.alice))
    assert farm.client.get("/admin/data", headers=user).status_code == 403
    assert farm.client.get("/api/v1/views/admin/data").status_code == 401
