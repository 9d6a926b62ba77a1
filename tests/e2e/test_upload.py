"""Agents upload to a real `perffarm server` process on a free local port."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from perffarm.agent import upload as upload_module
from perffarm.agent.store import LocalStore
from perffarm.agent.upload import (
    Credentials,
    IncompatibleServer,
    ServerClient,
    ServerUnreachable,
    config_dir,
    load_credentials,
    upload,
)
from perffarm.commands import main
from perffarm.model.api import API_VERSION
from tests.client.support import Answer, FaultServer
from tests.server.support import ADMIN, ServerProcess, make_run
from tests.support import free_port

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "farm.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One SQLite server for the tests that need only a server, not a fresh database."""
    tmp = tmp_path_factory.mktemp("shared-server")
    with ServerProcess(str(tmp / "farm.db"), tmp) as server:
        yield server


def _register(server: str, name: str, creds: Path, approve: bool = True) -> None:
    assert (
        main(
            [
                "machine",
                "register",
                name,
                "--server",
                server,
                "--creds-dir",
                str(creds),
                "--owner",
                f"owner-of-{name}",
            ]
        )
        == 0
    )
    if approve:
        assert main(["machine", "approve", name, "--server", server, "--admin-token", ADMIN]) == 0


def _fill_store(path: Path, machine: str, count: int, results: int = 3) -> list[str]:
    with LocalStore(path) as store:
        runs = [make_run(machine=machine, hour=h, results=results) for h in range(count)]
        for run in runs:
            store.save(run)
    return [str(r.id) for r in runs]


def _server_run_ids(url: str, **params: str) -> list[str]:
    ids, cursor = [], None
    while True:
        page = httpx.get(
            f"{url}/api/v1/runs",
            params={**params, "limit": 1000, **({"cursor": cursor} if cursor else {})},
            headers=ADMIN_HEADERS,
        ).json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def _upload_cli(store: Path, creds: Path, *extra: str) -> int:
    return main(["upload", "--store", str(store), "--creds-dir", str(creds), "--no-probe", *extra])


def test_two_agents_upload_each_run_once_and_again_sends_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ServerProcess(database, tmp_path) as server:
        agents = {}
        for name, count in (("agent-a", 7), ("agent-b", 5)):
            creds, store = tmp_path / name / "config", tmp_path / name / "store.db"
            _register(server.url, name, creds)
            agents[name] = (creds, store, _fill_store(store, name, count))
        capsys.readouterr()

        for creds, store, _ in agents.values():
            assert _upload_cli(store, creds, "--batch", "3", "--json") == 0
        first = [json.loads(chunk) for chunk in _split_json(capsys.readouterr().out)]
        for creds, store, _ in agents.values():
            assert _upload_cli(store, creds, "--json") == 0
        second = [json.loads(chunk) for chunk in _split_json(capsys.readouterr().out)]

        assert [len(r["stored"]) for r in first] == [7, 5]
        assert [r["pending"] for r in second] == [0, 0]
        assert all(r["stored"] == r["already_stored"] == [] for r in second)
        stored = _server_run_ids(server.url)
        expected = agents["agent-a"][2] + agents["agent-b"][2]
        assert sorted(stored) == sorted(expected)  # each exactly once
        assert len(_server_run_ids(server.url, machine="agent-b")) == 5


def _split_json(out: str) -> list[str]:
    """Separate the JSON documents of several `--json` commands printed one after another."""
    chunks, depth, start = [], 0, 0
    for index, char in enumerate(out):
        if char == "{":
            depth += 1
            if depth == 1:
                start = index
        elif char == "}":
            depth -= 1
            if depth == 0:
                chunks.append(out[start : index + 1])
    return chunks


def test_server_stopped_during_upload_fails_clearly_then_resumes(
    database: str, tmp_path: Path
) -> None:
    port = free_port()
    creds_dir = tmp_path / "config"
    store_path = tmp_path / "store.db"
    server = ServerProcess(database, tmp_path, port=port).start()
    try:
        _register(server.url, "lab-01", creds_dir)
        run_ids = _fill_store(store_path, "lab-01", 12)
        credentials = load_credentials(creds_dir)
        batches = 0

        def kill_after_first_batch(count: int) -> None:
            nonlocal batches
            batches += 1
            if batches == 1:
                server.kill()

        with (
            LocalStore(store_path) as store,
            ServerClient(
                credentials.server, token=credentials.token, retries=2, backoff=0.01
            ) as client,
        ):
            with pytest.raises(ServerUnreachable) as failure:
                upload(
                    store,
                    credentials,
                    batch_runs=4,
                    probe_seconds=0,
                    client=client,
                    on_progress=kill_after_first_batch,
                )
            message = str(failure.value)
            assert "\n" not in message
            assert f"cannot reach the results server at {server.url}" in message
            assert "4 of 12 runs were acknowledged" in message
            assert len(store.pending_uploads(credentials.server)) == 8

        server.start()
        with LocalStore(store_path) as store:
            report = upload(store, credentials, batch_runs=4, probe_seconds=0)
            assert len(report.stored) == 8
            assert store.pending_uploads(credentials.server) == []
        assert sorted(_server_run_ids(server.url)) == sorted(run_ids)
    finally:
        server.stop()


def test_the_cli_names_an_unreachable_server_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    creds = tmp_path / "config"
    url = f"http://127.0.0.1:{free_port()}"
    upload_module.save_credentials(creds, Credentials(server=url, machine="m", secret="s"))
    _fill_store(tmp_path / "store.db", "m", 2)

    code = _upload_cli(tmp_path / "store.db", creds, "--retries", "0")

    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert f"cannot reach the results server at {url}" in err
    assert "Traceback" not in err


def test_no_credentials_says_to_register(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = _upload_cli(tmp_path / "store.db", tmp_path / "nothing-here")
    err = capsys.readouterr().err
    assert code == 1 and "perffarm machine register" in err


def test_dry_run_lists_pending_runs_and_contacts_nobody(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    creds = tmp_path / "config"
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    upload_module.save_credentials(creds, Credentials(server=url, machine="m", secret="s"))
    ids = _fill_store(tmp_path / "store.db", "m", 3)

    assert _upload_cli(tmp_path / "store.db", creds, "--dry-run", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] and sorted(report["pending_ids"]) == sorted(ids)


def test_wrong_secret_is_refused_and_nothing_is_marked(
    shared_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    creds = tmp_path / "config"
    _register(shared_server.url, "wrong-secret-box", creds)
    ids = _fill_store(tmp_path / "store.db", "wrong-secret-box", 2)
    good = load_credentials(creds)
    upload_module.save_credentials(
        creds, Credentials(server=good.server, machine=good.machine, secret="guessed")
    )
    capsys.readouterr()

    code = _upload_cli(tmp_path / "store.db", creds)

    err = capsys.readouterr().err
    assert code == 1 and "refused the credentials" in err and "wrong-secret-box" in err
    with LocalStore(tmp_path / "store.db") as store:
        assert sorted(store.pending_uploads(good.server)) == sorted(ids)
    assert not set(ids) & set(_server_run_ids(shared_server.url))


def test_unapproved_machine_runs_are_stored_hidden_and_the_agent_is_told(
    shared_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    creds = tmp_path / "config"
    _register(shared_server.url, "pending-box", creds, approve=False)
    ids = _fill_store(tmp_path / "store.db", "pending-box", 2)
    capsys.readouterr()

    code = _upload_cli(tmp_path / "store.db", creds)

    err = capsys.readouterr().err
    assert code == 1
    assert "'pending-box' is not approved" in err and "hidden" in err
    public = httpx.get(f"{shared_server.url}/api/v1/runs", params={"machine": "pending-box"})
    assert public.json()["items"] == []
    assert sorted(_server_run_ids(shared_server.url, machine="pending-box")) == sorted(ids)
    with LocalStore(tmp_path / "store.db") as store:
        assert store.pending_uploads(load_credentials(creds).server) == []


def test_probe_figures_reach_the_server_and_credentials_are_private(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    creds = tmp_path / "config"
    _register(shared_server.url, "probe-box", creds)
    _fill_store(tmp_path / "store.db", "probe-box", 1)
    mode = stat.S_IMODE(os.stat(creds / "credentials.json").st_mode)
    assert mode == 0o600

    with LocalStore(tmp_path / "store.db") as store:
        report = upload(store, load_credentials(creds), probe_seconds=0.3)
    assert report.probe is not None and report.probe.transactions > 10
    assert report.probe.latency_p50_ms <= report.probe.latency_p99_ms <= report.probe.latency_max_ms
    machine = httpx.get(f"{shared_server.url}/api/v1/machines/probe-box").json()
    assert machine["probe"]["transactions"] == report.probe.transactions
    (run,) = httpx.get(f"{shared_server.url}/api/v1/runs", params={"machine": "probe-box"}).json()[
        "items"
    ]
    assert run["probe"]["transactions_per_second"] == report.probe.transactions_per_second


def test_a_server_of_another_api_version_is_refused_and_nothing_is_marked(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    creds = tmp_path / "config"
    _register(shared_server.url, "version-box", creds)
    ids = _fill_store(tmp_path / "store.db", "version-box", 2)
    real = load_credentials(creds)
    with FaultServer(shared_server.url) as newer, LocalStore(tmp_path / "store.db") as store:
        newer.health = {"api_version": API_VERSION + 1, "min_client_api_version": API_VERSION + 1}
        through = Credentials(newer.url, real.machine, real.secret)
        with pytest.raises(IncompatibleServer, match=r"too new.*upgrade perffarm on this machine"):
            upload(store, through, probe_seconds=0)
        assert sorted(store.pending_uploads(newer.url)) == sorted(ids)
        newer.health = {"api_version": API_VERSION - 1}
        with pytest.raises(IncompatibleServer, match=r"too old.*upgrade the server"):
            upload(store, through, probe_seconds=0)
    assert [p for p in newer.paths() if "/runs" in p] == []


def test_busy_answers_are_retried_and_each_run_is_stored_once(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    """503 (with Retry-After) and a 502 on the way: the upload waits, resends, and the
    server's idempotency keeps one copy of each run."""
    creds = tmp_path / "config"
    _register(shared_server.url, "busy-box", creds)
    ids = _fill_store(tmp_path / "store.db", "busy-box", 6)
    real = load_credentials(creds)
    waits: list[float] = []
    with FaultServer(shared_server.url) as faults, LocalStore(tmp_path / "store.db") as store:
        faults.only = "/runs/batch"
        busy = Answer.json(503, {"detail": "the database is unavailable; retry later"})
        busy.headers["Retry-After"] = "0.2"
        faults.script.extend([busy, Answer(502, b"bad gateway"), busy])
        through = Credentials(faults.url, real.machine, real.secret)
        with ServerClient(
            faults.url, token=through.token, backoff=0.05, sleep=waits.append
        ) as client:
            report = upload(store, through, batch_runs=2, probe_seconds=0, client=client)
        assert sorted(report.stored) == sorted(ids) and report.already_stored == []
        assert store.pending_uploads(faults.url) == []
    assert faults.paths().count("/api/v1/runs/batch") == 3 + 3
    assert len(waits) == 3 and sum(w >= 0.2 for w in waits) >= 2
    assert sorted(_server_run_ids(shared_server.url, machine="busy-box")) == sorted(ids)


def test_credentials_default_to_the_last_registered_server(tmp_path: Path) -> None:
    directory = config_dir(tmp_path)
    upload_module.save_credentials(directory, Credentials("http://a:1", "m1", "s1"))
    upload_module.save_credentials(directory, Credentials("http://b:2", "m2", "s2"))
    assert load_credentials(directory).machine == "m2"
    assert load_credentials(directory, "http://a:1/").machine == "m1"


def test_backoff_doubles_between_retries_with_jitter(tmp_path: Path) -> None:
    waits: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"
    client = ServerClient(url, retries=3, backoff=0.5, sleep=waits.append)
    with client, pytest.raises(ServerUnreachable, match="4 tries"):
        client.health()
    floors = [0.5, 1.0, 2.0]
    assert len(waits) == 3
    assert all(f <= w <= f + 0.5 for f, w in zip(floors, waits, strict=True)), waits


@pytest.mark.postgres
def test_two_server_processes_on_one_postgres_store_every_run_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """Every agent sends its runs to both servers at once: the same runs race each other."""
    with ServerProcess(postgres_url, tmp_path) as one, ServerProcess(postgres_url, tmp_path) as two:
        agents = []
        for index in range(4):
            name = f"agent-{index}"
            creds = tmp_path / name
            _register(one.url, name, creds)
            secret = load_credentials(creds).secret
            store = tmp_path / f"{name}.db"
            ids = _fill_store(store, name, 15, results=5)
            agents.append((name, secret, store, ids))

        errors: list[BaseException] = []

        def send(name: str, secret: str, store_path: Path, server: str) -> None:
            try:
                with LocalStore(store_path) as store:
                    upload(store, Credentials(server, name, secret), batch_runs=5, probe_seconds=0)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=send, args=(name, secret, store, server.url))
            for name, secret, store, _ in agents
            for server in (one, two)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        assert errors == []
        stored = _server_run_ids(one.url)
        expected = [run_id for *_, ids in agents for run_id in ids]
        assert sorted(stored) == sorted(expected)
        results = httpx.get(
            f"{two.url}/api/v1/results", params={"limit": 1000}, headers=ADMIN_HEADERS
        ).json()["items"]
        assert len(results) == 4 * 15 * 5
        for _, _, store_path, _ in agents:
            with LocalStore(store_path) as store:
                assert store.pending_uploads(one.url) == store.pending_uploads(two.url) == []


def test_a_run_replaced_after_upload_is_pending_again_and_meets_the_conflict(
    shared_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 17, case 8: `import --replace` once left the run marked uploaded, so the server
    # kept the old content and nothing said the two differed.
    creds, store = tmp_path / "config", tmp_path / "store.db"
    _register(shared_server.url, "replace-box", creds)
    (run_id,) = _fill_store(store, "replace-box", 1)
    assert _upload_cli(store, creds) == 0
    server = load_credentials(creds).server

    exported = tmp_path / "run.json"
    assert main(["export", run_id, "--store", str(store), "--output", str(exported)]) == 0
    document = json.loads(exported.read_text())
    document["tag"] = "changed after upload"
    exported.write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["import", str(exported), "--replace", "--store", str(store)]) == 0
    captured = capsys.readouterr()
    assert f"replaced run {run_id}" in captured.out
    assert "pending again" in captured.err and server in captured.err
    with LocalStore(store) as local:
        assert local.pending_uploads(server) == [run_id]
        assert local.uploaded_to(run_id) == []

    assert _upload_cli(store, creds) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert run_id in err and "409 conflict" in err and "import --replace" in err
    kept = httpx.get(f"{server}/runs/{run_id}/run.json", headers=ADMIN_HEADERS)
    assert kept.status_code == 200 and kept.json()["tag"] != "changed after upload"
    with LocalStore(store) as local:
        assert local.pending_uploads(server) == [run_id]  # still pending: nothing hidden

    # The advice works: the server's copy imported back makes the two agree again.
    exported.write_bytes(kept.content)
    assert main(["import", str(exported), "--replace", "--store", str(store)]) == 0
    capsys.readouterr()
    assert _upload_cli(store, creds, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["already_stored"] == [run_id] and report["conflicts"] == []
