"""Signed-in users act from the command line with their own rights, as on the web (issue 16,
case 10): an admin approves as themselves, an owner sees their machine waiting for approval
and lets others act on it, a load test's creator makes tokens for its workers. A real
server on a free port; each person signs in through their own credentials directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from perffarm.client.credentials import UserTokens, save_user_tokens
from perffarm.commands import main
from perffarm.server.settings import database_url
from perffarm.server.store import tokens, users
from perffarm.server.store.engine import make_engine
from tests.server.support import ADMIN, ServerProcess


@dataclass
class Place:
    url: str
    dirs: dict[str, str]  # each person's credentials directory, signed in to the server
    secrets: dict[str, str]  # each person's token
    nobody: str  # a credentials directory with no sign-in


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    tmp = tmp_path_factory.mktemp("signed-in")
    database = str(tmp / "farm.db")
    with ServerProcess(database, tmp) as server:
        engine = make_engine(database_url(database))
        secrets: dict[str, str] = {}
        with engine.connect() as conn:
            for name, scope in (("root", "admin"), ("alice", "upload"), ("bob", "upload")):
                user = users.create(conn, name, is_admin=name == "root")
                _, secrets[name] = tokens.issue(
                    conn,
                    user.id,
                    kind="personal",
                    scopes=tokens.parse_scopes(scope),
                    lifetime=timedelta(days=1),
                )
        engine.dispose()
        dirs = {}
        for name, secret in secrets.items():
            folder = tmp / f"creds-{name}"
            # What `perffarm login` leaves behind (its device flow is tested elsewhere).
            save_user_tokens(
                folder,
                UserTokens(
                    server=server.url,
                    access_token=secret,
                    refresh_token=None,
                    expires_at=datetime.now(UTC) + timedelta(days=1),
                    scope="admin" if name == "root" else "upload",
                ),
            )
            dirs[name] = str(folder)
        nobody = tmp / "creds-nobody"
        nobody.mkdir()
        yield Place(server.url, dirs, secrets, str(nobody))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _machine(place: Place, name: str) -> dict:
    answer = httpx.get(
        f"{place.url}/api/v1/machines/{name}", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert answer.status_code == 200, answer.text
    data: dict = answer.json()
    return data


def _register(place: Place, capsys: pytest.CaptureFixture[str], who: str, name: str) -> None:
    code, _, err = _run(
        capsys, "machine", "register", name, "--server", place.url, "--creds-dir", place.dirs[who]
    )
    assert code == 0, err
    assert _machine(place, name)["owner"] == who


def test_an_admin_approves_as_themselves_and_others_may_not(
    place: Place, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(place, capsys, "alice", "lab-a")
    # Nobody signed in, no admin token: a usage error saying what to do; nothing approved.
    code, _, err = _run(
        capsys, "machine", "approve", "lab-a", "--server", place.url, "--creds-dir", place.nobody
    )
    assert code == 2
    assert "perffarm login" in _one_line(err)
    # The owner is no admin: refused in one line.
    code, _, err = _run(capsys, "machine", "approve", "lab-a", "--creds-dir", place.dirs["alice"])
    assert code == 1
    assert "does not allow approving machine 'lab-a'" in _one_line(err)
    assert _machine(place, "lab-a")["approved"] is False
    # An admin user, signed in: no admin token needed (the server is the one signed in to).
    code, out, err = _run(
        capsys, "machine", "approve", "lab-a", "--json", "--creds-dir", place.dirs["root"]
    )
    assert code == 0, err
    assert json.loads(out)["approved"] is True
    assert _machine(place, "lab-a")["approved"] is True
    # The admin token still works, and wins over a sign-in.
    _register(place, capsys, "bob", "lab-b")
    code, _, err = _run(
        capsys,
        "machine",
        "approve",
        "lab-b",
        "--creds-dir",
        place.dirs["alice"],
        "--admin-token",
        ADMIN,
    )
    assert code == 0, err
    assert _machine(place, "lab-b")["approved"] is True


def test_an_owner_sees_their_machine_waiting_for_approval(
    place: Place, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(place, capsys, "alice", "lab-waiting")

    def listed(*creds: str) -> list[str]:
        code, out, err = _run(capsys, "machine", "list", "--server", place.url, "--json", *creds)
        assert code == 0, err
        return [m["name"] for m in json.loads(out)]

    assert "lab-waiting" in listed("--creds-dir", place.dirs["alice"])
    assert "lab-waiting" in listed("--creds-dir", place.dirs["root"])
    assert "lab-waiting" not in listed("--creds-dir", place.dirs["bob"])
    assert "lab-waiting" not in listed("--creds-dir", place.nobody)
    code, out, _ = _run(capsys, "machine", "list", "--creds-dir", place.dirs["alice"])
    assert code == 0 and "lab-waiting" in out


def test_an_owner_lets_another_user_act_on_a_machine(
    place: Place, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(place, capsys, "alice", "lab-shared")
    alice = ("--creds-dir", place.dirs["alice"])
    code, out, err = _run(capsys, "machine", "grant", "lab-shared", "bob", "--json", *alice)
    assert code == 0, err
    assert [g["user"] for g in json.loads(out)] == ["bob"]
    code, out, err = _run(capsys, "machine", "grants", "lab-shared", *alice)
    assert code == 0, err
    assert "bob" in out and "user:alice" in out
    # Bob may act on its alerts now, not share it further; nobody else sees its grants.
    code, _, err = _run(
        capsys, "machine", "grant", "lab-shared", "root", "--creds-dir", place.dirs["bob"]
    )
    assert code == 1 and "only the owner of machine 'lab-shared'" in _one_line(err)
    code, _, err = _run(capsys, "machine", "grants", "lab-shared", "--creds-dir", place.dirs["bob"])
    assert code == 1 and "lab-shared" in _one_line(err)
    code, _, err = _run(capsys, "machine", "grant", "lab-shared", "nobody-such", *alice)
    assert code == 1 and "nobody-such" in _one_line(err)
    code, out, err = _run(capsys, "machine", "ungrant", "lab-shared", "bob", "--json", *alice)
    assert code == 0, err
    assert json.loads(out) == []
    code, _, err = _run(capsys, "machine", "ungrant", "lab-shared", "bob", *alice)
    assert code == 1 and "has no grant" in _one_line(err)
    code, out, _ = _run(capsys, "machine", "grants", "lab-shared", *alice)
    assert code == 0 and "only the owner" in out


def test_a_load_tests_creator_makes_tokens_for_its_workers(
    place: Place, capsys: pytest.CaptureFixture[str]
) -> None:
    made = httpx.post(
        f"{place.url}/api/v1/loadtests",
        json={"started": True},
        headers={"Authorization": f"Bearer {place.secrets['alice']}"},
    )
    assert made.status_code == 201, made.text
    test_id = made.json()["id"]
    code, out, err = _run(capsys, "loadtest", "token", test_id, "--creds-dir", place.dirs["alice"])
    assert code == 0, err
    token = out.strip()
    assert token.startswith("pflt_") and "only this once" in err
    batch = {"worker": "w", "incarnation": "i", "sequence": 0, "datapoints": []}
    sent = httpx.post(
        f"{place.url}/api/v1/loadtests/{test_id}/datapoints",
        json=batch,
        headers={"X-Perffarm-Loadtest-Token": token},
    )
    assert sent.status_code == 200, sent.text
    code, out, err = _run(
        capsys, "loadtest", "token", test_id, "--json", "--creds-dir", place.dirs["root"]
    )
    assert code == 0, err
    assert json.loads(out)["test_id"] == test_id
    # Another user may not; without a sign-in it is a usage error.
    code, _, err = _run(capsys, "loadtest", "token", test_id, "--creds-dir", place.dirs["bob"])
    assert code == 1 and "only the creator of load test" in _one_line(err)
    code, _, err = _run(
        capsys, "loadtest", "token", test_id, "--server", place.url, "--creds-dir", place.nobody
    )
    assert code == 2 and "perffarm login" in _one_line(err)
    code, _, err = _run(capsys, "loadtest", "token", "no-such", "--creds-dir", place.dirs["alice"])
    assert code == 1 and "no-such" in _one_line(err)


@pytest.mark.parametrize(
    "command",
    [
        ["machine", "grant"],
        ["machine", "ungrant"],
        ["machine", "grants"],
        ["loadtest", "token"],
        ["machine", "retire"],
        ["data", "delete"],
        ["data", "keep"],
        ["data", "keep-project"],
        ["data", "delete-project"],
        ["data", "retention"],
        ["data", "prune"],
        ["data", "audit"],
        ["prune"],
    ],
)
def test_the_new_commands_have_help_with_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--help"]) == 0
    assert "Example: perffarm " in capsys.readouterr().out


def test_owners_delete_and_keep_their_runs_and_admins_see_the_audit(
    place: Place, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.server.support import make_run

    _register(place, capsys, "alice", "lab-del")
    alice = ("--creds-dir", place.dirs["alice"])
    bob = ("--creds-dir", place.dirs["bob"])
    root = ("--creds-dir", place.dirs["root"])
    assert _run(capsys, "machine", "approve", "lab-del", *root)[0] == 0
    upload = {"Authorization": f"Bearer {place.secrets['alice']}", "X-Perffarm-Machine": "lab-del"}
    runs = [make_run(machine="lab-del", project="lifecycle", hour=h) for h in range(3)]
    for run in runs:
        stored = httpx.post(
            f"{place.url}/api/v1/runs",
            content=run.to_json(),
            headers={**upload, "Content-Type": "application/json"},
        )
        assert stored.status_code == 201, stored.text

    # Bob may not delete Alice's run; Alice may, and keep another whole.
    code, _, err = _run(capsys, "data", "delete", str(runs[0].id), *bob)
    assert code == 1 and "only the owner of machine 'lab-del'" in _one_line(err)
    code, out, err = _run(capsys, "data", "delete", str(runs[0].id), "--json", *alice)
    assert code == 0, err
    assert json.loads(out) == [{"id": str(runs[0].id), "alerts_removed": 0}]
    assert _run(capsys, "data", "keep", str(runs[1].id), *alice)[0] == 0
    listed = httpx.get(f"{place.url}/api/v1/runs", params={"project": "lifecycle"}).json()
    assert {(r["id"], r["keep"]) for r in listed["items"]} == {
        (str(runs[1].id), True),
        (str(runs[2].id), False),
    }

    # Only admins delete projects, see the retention and the audit trail.
    code, _, err = _run(capsys, "data", "delete-project", "lifecycle", "--yes", *alice)
    assert code == 1 and "admin" in _one_line(err)
    code, _, err = _run(capsys, "data", "delete-project", "lifecycle", *root)
    assert code == 2 and "--yes" in _one_line(err)
    code, out, err = _run(capsys, "data", "retention", "--json", *root)
    assert code == 0 and json.loads(out)["policy"]["keep_samples"] == "forever"
    code, out, err = _run(capsys, "data", "audit", "--json", *root)
    assert code == 0, err
    assert {(e["actor"], e["action"], e["target"]) for e in json.loads(out)} >= {
        ("user:alice", "delete run", str(runs[0].id))
    }

    # Retiring: the owner may; the machine then uploads no more.
    code, _, err = _run(capsys, "machine", "retire", "lab-del", *bob)
    assert code == 1
    code, out, err = _run(capsys, "machine", "retire", "lab-del", "--json", *alice)
    assert code == 0 and json.loads(out)["retired_at"]
    refused = httpx.post(
        f"{place.url}/api/v1/runs",
        content=make_run(machine="lab-del", project="lifecycle", hour=9).to_json(),
        headers={**upload, "Content-Type": "application/json"},
    )
    assert refused.status_code == 403
    code, out, err = _run(capsys, "data", "delete-project", "lifecycle", "--yes", *root)
    assert code == 0 and "2 runs" in out
