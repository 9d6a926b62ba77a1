"""`perffarm db backup|restore|copy`: consistent while servers write, and nothing lost.

Real servers on free ports take uploads from several threads while the backup runs; the
backup is restored into a new database and a second server on it answers every run it
holds with the same bytes as the original.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from perffarm.commands import main
from perffarm.server.settings import database_url
from perffarm.server.store import migrate
from perffarm.server.store.backup import row_counts
from perffarm.server.store.engine import make_engine
from tests.conftest import new_postgres_database
from tests.server.support import ADMIN, ServerProcess, make_run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _new_database(kind: str, tmp_path: Path, name: str, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(tmp_path / f"{name}.db")
    # Further PostgreSQL databases for the same test: the fixture makes one per request.
    databases = ExitStack()
    request.addfinalizer(databases.close)
    return databases.enter_context(new_postgres_database())


def _machine(server: ServerProcess, name: str) -> dict[str, str]:
    made = httpx.post(f"{server.url}/api/v1/machines", json={"name": name, "owner": "alice"})
    assert made.status_code == 201, made.text
    approved = httpx.post(
        f"{server.url}/api/v1/machines/{name}/approve",
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert approved.status_code == 200, approved.text
    return {"Authorization": f"Bearer {name}:{made.json()['secret']}"}


def _run_bytes(server: ServerProcess, run_id: str) -> bytes:
    answer = httpx.get(
        f"{server.url}/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.content


def _stored_ids(server: ServerProcess) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(
            f"{server.url}/api/v1/runs",
            params=params,
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).json()
        ids |= {run["id"] for run in page["items"]}
        cursor = page.get("next_cursor")
        if not cursor:
            return ids


def test_backup_while_four_agents_upload_then_restore_keeps_every_run(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, capsys
) -> None:  # type: ignore[no-untyped-def]
    original = _new_database(kind, tmp_path, "live", request)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with ServerProcess(original, tmp_path) as server:
        agents = [_machine(server, f"agent-{n}") for n in range(4)]

        def upload(n: int) -> None:
            hour = 0
            with httpx.Client(base_url=server.url, headers=agents[n], timeout=30) as client:
                while not stop.is_set() or hour < 5:
                    run = make_run(machine=f"agent-{n}", hour=hour, results=4)
                    answer = client.post(
                        "/api/v1/runs",
                        content=run.to_json(),
                        headers={"Content-Type": "application/json"},
                    )
                    assert answer.status_code == 201, answer.text
                    with lock:
                        acknowledged.append(str(run.id))
                    hour += 1

        threads = [threading.Thread(target=upload, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        while True:  # some runs before the backup starts
            with lock:
                if len(acknowledged) >= 20:
                    before_backup = set(acknowledged)
                    break
        backup = tmp_path / "backups" / "farm.backup"
        code = main(["db", "backup", "--database", original, str(backup), "--json"])
        stop.set()
        for thread in threads:
            thread.join()
        out = capsys.readouterr()
        assert code == 0, out.err
        made = json.loads(out.out)
        assert made["kind"] == kind and made["revision"] == migrate.head_revision()
        assert backup.stat().st_mode & 0o777 == 0o600
        assert not list(backup.parent.glob(".*")), "no partial file left behind"

        restored = _new_database(kind, tmp_path, "restored", request)
        assert main(["db", "restore", "--database", restored, str(backup)]) == 0
        with ServerProcess(restored, tmp_path) as copy:
            held = _stored_ids(copy)
            # Every run acknowledged before the backup began is in it; nothing else is
            # there but runs the original acknowledged; each reads back byte for byte.
            assert before_backup <= held <= set(acknowledged)
            for run_id in held:
                assert _run_bytes(copy, run_id) == _run_bytes(server, run_id)
    # Rows per table: the restored database holds exactly what the backup holds.
    restored_engine = make_engine(database_url(restored))
    counts = row_counts(restored_engine)
    restored_engine.dispose()
    assert counts["runs"] == len(held) and counts["results"] == 4 * len(held)
    if kind == "sqlite":
        backup_engine = make_engine(f"sqlite:///{backup}")
        assert row_counts(backup_engine) == counts
        backup_engine.dispose()


def test_restore_refuses_what_would_lose_data_or_cannot_be_read(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, capsys
) -> None:  # type: ignore[no-untyped-def]
    live = _new_database(kind, tmp_path, "live", request)
    with ServerProcess(live, tmp_path) as server:
        auth = _machine(server, "lab-01")
        run = make_run(hour=1)
        httpx.post(
            f"{server.url}/api/v1/runs",
            content=run.to_json(),
            headers={**auth, "Content-Type": "application/json"},
        )
    backup = tmp_path / "farm.backup"
    assert main(["db", "backup", "--database", live, str(backup)]) == 0
    capsys.readouterr()

    # A second backup to the same name does not overwrite the first.
    assert main(["db", "backup", "--database", live, str(backup)]) == 1
    assert "already exists" in capsys.readouterr().err

    # A database that holds data is replaced only when asked.
    assert main(["db", "restore", "--database", live, str(backup)]) == 1
    err = capsys.readouterr().err
    assert "holds" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert main(["db", "restore", "--database", live, str(backup), "--force"]) == 0
    capsys.readouterr()

    # Not a backup at all.
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"hello, not a database")
    assert main(["db", "restore", "--database", str(tmp_path / "n.db"), str(junk)]) == 1
    assert "not a perffarm backup" in capsys.readouterr().err

    # A backup of the other kind points to db copy.
    other = (
        str(tmp_path / "other.db")
        if kind != "sqlite"
        else _new_database("postgresql", tmp_path, "other", request)
    )
    assert main(["db", "restore", "--database", other, str(backup)]) == 1
    assert "db copy" in capsys.readouterr().err


def test_restore_refuses_a_newer_schema_and_upgrades_an_older_one(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    old = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{old}")
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(migrate._config(connection), "0004")
    engine.dispose()
    backup = tmp_path / "old.backup"
    assert main(["db", "backup", "--database", str(old), str(backup), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == "0004"
    target = tmp_path / "new.db"
    assert main(["db", "restore", "--database", str(target), str(backup), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["backup_revision"] == "0004" and answer["revision"] == migrate.head_revision()

    with sqlite3.connect(backup) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.close()
    assert main(["db", "restore", "--database", str(tmp_path / "x.db"), str(backup)]) == 1
    assert "newer than this perffarm" in capsys.readouterr().err


def _comparable(value: object) -> object:
    # SQLite keeps times as UTC without a zone; PostgreSQL gives them back with it.
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


def _all_rows(url: str) -> dict[str, list[tuple]]:
    engine = make_engine(url)
    from perffarm.server.store.tables import metadata

    rows = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows[table.name] = [
                tuple(map(_comparable, row))
                for row in connection.execute(sa.select(table).order_by(*order))
            ]
    engine.dispose()
    return rows


def test_copy_from_sqlite_to_postgresql_keeps_every_row_and_serves(
    tmp_path: Path, postgres_url: str, capsys
) -> None:  # type: ignore[no-untyped-def]
    source = str(tmp_path / "farm.db")
    with ServerProcess(source, tmp_path) as server:
        auth = _machine(server, "lab-01")
        ids = []
        for hour in range(12):
            run = make_run(hour=hour, results=3)
            answer = httpx.post(
                f"{server.url}/api/v1/runs",
                content=run.to_json(),
                headers={**auth, "Content-Type": "application/json"},
            )
            assert answer.status_code == 201
            ids.append(str(run.id))
        original = {run_id: _run_bytes(server, run_id) for run_id in ids}

    assert main(["db", "copy", "--from", source, "--to", postgres_url, "--json"]) == 0
    copied = json.loads(capsys.readouterr().out)
    assert copied["tables"]["runs"] == 12 and copied["tables"]["results"] == 36

    assert _all_rows(database_url(source)) == _all_rows(postgres_url)
    with ServerProcess(postgres_url, tmp_path) as server:
        for run_id, body in original.items():
            assert _run_bytes(server, run_id) == body
        # The copied machine credentials still work, and new rows get new ids.
        later = make_run(hour=40)
        answer = httpx.post(
            f"{server.url}/api/v1/runs",
            content=later.to_json(),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert answer.status_code == 201, answer.text

    # A target that already holds data is refused; so is a source without perffarm tables.
    assert main(["db", "copy", "--from", source, "--to", postgres_url]) == 1
    assert "already holds data" in capsys.readouterr().err
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert main(["db", "copy", "--from", str(empty), "--to", str(tmp_path / "t.db")]) == 1
    assert "no perffarm database" in capsys.readouterr().err
