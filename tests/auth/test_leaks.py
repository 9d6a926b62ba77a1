"""No secret kept or shown in clear by the server: a real server (HTTP and gRPC, access log
on) is called with every kind of secret it knows, in headers, bodies, query strings, paths
and gRPC metadata; then every line it logged, every answer it gave and every byte of its
database are searched for each secret. Only the answer that made a secret may show it
(once, by design); the database keeps hashes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from perffarm.server.settings import database_url
from perffarm.server.store import tables as t
from perffarm.server.store.engine import make_engine
from tests.grpc.support import GrpcServerProcess
from tests.server.support import ADMIN, make_run

PASSWORD = "Tr0ub4dor-and-3-horses"
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    from tests.web.conftest import scratch_database

    with scratch_database(request.param, tmp_path) as url:
        yield url


@dataclass
class Recorder:
    """An HTTP client of the server that keeps every answer, and the secrets in play."""

    server: GrpcServerProcess
    secrets: dict[str, str] = field(default_factory=dict)
    #: (what was asked, answer text, the secrets this answer made)
    answers: list[tuple[str, str, set[str]]] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.server.url, timeout=60, follow_redirects=False)

    def keep(self, name: str, value: str) -> str:
        assert value and len(value) >= 16, (name, value)
        self.secrets[name] = value
        return value

    def call(self, method: str, url: str, *, makes: tuple[str, ...] = (), **options: Any) -> Any:
        self.http.cookies.clear()
        answer = self.http.request(method, url, **options)
        self.requests += 1
        assert answer.status_code < 500, (method, url, answer.text)
        made = set()
        if makes:
            data = answer.json()
            for name in makes:
                key = name.split(":")[-1]
                made.add(self.keep(name, str(data[key])))
        self.answers.append((f"{method} {url}", answer.text, made))
        return answer


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _exercise(rec: Recorder) -> None:
    """Every kind of secret, sent every way a client sends it (right and wrong)."""
    admin = _bearer(rec.keep("admin token", ADMIN))
    # A user, who signs in on the web with a password, and a command line with the device flow.
    rec.call("POST", "/api/v1/users", json={"name": "alice", "password": PASSWORD}, headers=admin)
    rec.keep("password", PASSWORD)
    device = rec.call(
        "POST",
        "/oauth/device_authorization",
        data={"client_id": "perffarm-cli", "scope": "upload"},
        makes=("device code:device_code",),
    ).json()
    form = rec.call("GET", "/signin")
    csrf = form.cookies.get("perffarm_csrf") or re.search(r'value="([^"]{32,})"', form.text)[1]
    cookies = {"perffarm_csrf": csrf}
    signed = rec.call(
        "POST",
        "/signin",
        data={"username": "alice", "password": PASSWORD, "csrf_token": csrf, "next": "/"},
        cookies=cookies,
    )
    assert signed.status_code == 303, signed.text
    session = rec.keep("session cookie", signed.cookies["perffarm_session"])
    web = {"perffarm_session": session, "perffarm_csrf": csrf}
    rec.call("GET", "/device", params={"user_code": device["user_code"]}, cookies=web)
    approved = rec.call(
        "POST",
        "/device",
        data={"user_code": device["user_code"], "action": "approve", "csrf_token": csrf},
        cookies=web,
    )
    assert approved.status_code == 200, approved.text
    signin = rec.call(
        "POST",
        "/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device["device_code"],
            "client_id": "perffarm-cli",
        },
        makes=("access token:access_token", "refresh token:refresh_token"),
    ).json()
    fresh = rec.call(
        "POST",
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": signin["refresh_token"]},
        makes=("second access token:access_token", "second refresh token:refresh_token"),
    ).json()
    access = _bearer(fresh["access_token"])
    personal = rec.call(
        "POST",
        "/api/v1/tokens",
        json={"scope": "upload", "expires": "1d", "name": "ci"},
        headers=access,
        makes=("personal token:token",),
    ).json()["token"]
    # A machine of alice's (registered with her token), and one registered anonymously.
    machine = rec.call(
        "POST",
        "/api/v1/machines",
        json={"name": "lab-01", "owner": "x"},
        headers=_bearer(personal),
        makes=("machine secret:secret",),
    ).json()["secret"]
    rec.call("POST", "/api/v1/machines/lab-01/approve", headers=admin)
    stranger = rec.call(
        "POST",
        "/api/v1/machines",
        json={"name": "lab-02", "owner": "somebody"},
        makes=("anonymous machine secret:secret",),
    ).json()["secret"]
    lab01 = _bearer(f"lab-01:{machine}")
    run = make_run(machine="lab-01")
    rec.call(
        "POST",
        "/api/v1/runs",
        content=run.to_json(),
        headers={**lab01, "Content-Type": "application/json"},
    )
    rec.call("GET", "/api/v1/machines/me", headers=lab01)
    # A new secret for the machine: the old one is refused from now on.
    rotated = rec.call(
        "POST",
        "/api/v1/machines/lab-01/secret",
        headers=_bearer(personal),
        makes=("rotated machine secret:secret",),
    ).json()["secret"]
    rec.call("GET", "/api/v1/machines/me", headers=lab01)
    # A load test, a token made for it, its workers writing with the token.
    test = rec.call("POST", "/api/v1/loadtests", json={"started": True}, headers=access).json()
    loadtest_token = rec.call(
        "POST",
        f"/api/v1/loadtests/{test['id']}/tokens",
        headers=access,
        makes=("load-test token:token",),
    ).json()["token"]
    batch = {"worker": "w", "incarnation": "i", "sequence": 0, "datapoints": []}
    rec.call(
        "POST",
        f"/api/v1/loadtests/{test['id']}/datapoints",
        json=batch,
        headers={"X-Perffarm-Loadtest-Token": loadtest_token},
    )
    rec.call(
        "PUT",
        f"/test/{test['id']}/peer/p1/metrics",
        params={"token": loadtest_token},
        json={"latency": 1},
    )
    # Secrets where a careless client puts them: query strings and paths, right and wrong.
    for query in (
        {"token": personal},
        {"access_token": fresh["access_token"]},
        {"admin_token": ADMIN},
        {"secret": rotated},
        {"password": PASSWORD},
        {"code": device["device_code"]},
        {"state": session},
        {"refresh_token": fresh["refresh_token"]},
    ):
        rec.call("GET", "/api/v1/runs", params=query)
    for wrong in (
        f"lab-01:{machine}",  # the secret before it was rotated
        f"lab-02:{stranger}x",
        personal + "x",
        ADMIN + "x",
        signin["access_token"],  # spent by the refresh
        fresh["refresh_token"],  # a refresh token is no access token
    ):
        rec.call("GET", "/api/v1/me", headers=_bearer(wrong))
    rec.call("GET", "/api/v1/me", headers=_bearer(personal))
    rec.call("GET", "/api/v1/tokens", headers=_bearer(personal))
    rec.call("GET", "/", cookies={"perffarm_session": session})
    rec.call("GET", "/machines", headers=admin)
    rec.call("POST", "/oauth/revoke", data={"token": fresh["refresh_token"]})
    rec.call("POST", "/signout", data={"csrf_token": csrf}, cookies=web)
    _grpc(rec, f"lab-01:{rotated}", personal, loadtest_token, test["id"])


def _grpc(rec: Recorder, machine: str, personal: str, loadtest_token: str, test_id: str) -> None:
    """The same secrets in gRPC metadata, right and wrong."""
    import grpc

    from perffarm.proto.v1 import perffarm_pb2 as pb
    from perffarm.proto.v1 import perffarm_pb2_grpc

    document = make_run(machine="lab-01", hour=1).to_json().encode()
    point = pb.Datapoint(peer_id="p1", metrics_json='{"latency": 2}')
    batch = pb.DatapointBatch(
        test_id=test_id, worker="g", incarnation="i", sequence=0, datapoints=[point]
    )
    with rec.server.channel() as channel:
        runs = perffarm_pb2_grpc.RunsStub(channel)
        loads = perffarm_pb2_grpc.LoadTestsStub(channel)
        for credential in (machine, machine + "x", personal, "pft_" + "x" * 20, ADMIN + "y"):
            metadata = [("authorization", f"Bearer {credential}"), ("x-perffarm-machine", "lab-01")]
            for call in (
                lambda m=metadata: runs.SubmitRun(
                    pb.SubmitRunRequest(document=document), metadata=m, timeout=30
                ),
                lambda m=metadata: runs.ListAllResults(
                    pb.ListResultsRequest(), metadata=m, timeout=30
                ),
            ):
                try:
                    answer = call()
                    rec.answers.append(("gRPC", str(answer), set()))
                except grpc.RpcError as error:
                    rec.answers.append(("gRPC", f"{error.code()} {error.details()}", set()))
        for token in (loadtest_token, loadtest_token + "z"):
            try:
                acks = list(
                    loads.StreamDatapoints(
                        iter([batch]),
                        metadata=[("x-perffarm-loadtest-token", token)],
                        timeout=30,
                    )
                )
                rec.answers.append(("gRPC stream", str(acks), set()))
            except grpc.RpcError as error:
                rec.answers.append(("gRPC stream", f"{error.code()} {error.details()}", set()))


def _database_text(database: str) -> list[tuple[str, bytes]]:
    """Every byte the database keeps: the SQLite files, or every row of every table."""
    if "://" not in database:
        files = [Path(database), Path(database + "-wal"), Path(database + "-shm")]
        return [(str(f), f.read_bytes()) for f in files if f.exists()]
    engine = make_engine(database_url(database))
    import sqlalchemy as sa

    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            assert t.users.name in names
            dumped = []
            for name in names:
                rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).all()
                dumped.append((f"table {name}", repr(rows).encode()))
            return dumped
    finally:
        engine.dispose()


def test_no_secret_in_clear_in_logs_answers_or_the_database(database: str, tmp_path: Path) -> None:
    with GrpcServerProcess(database, tmp_path, extra=["--log-level", "info"]) as server:
        rec = Recorder(server)
        try:
            _exercise(rec)
        finally:
            rec.http.close()
    log = server.log.read_text(encoding="utf-8", errors="replace")
    stored = _database_text(database)
    assert len(rec.secrets) >= 13, sorted(rec.secrets)
    found = []
    for name, secret in rec.secrets.items():
        if secret in log:
            line = next(line for line in log.splitlines() if secret in line)
            found.append(f"{name} in the server's log: {line[:300]}")
        for asked, text, made in rec.answers:
            if secret in text and secret not in made:
                found.append(f"{name} in the answer to {asked}: {text[:300]}")
        for where, data in stored:
            if secret.encode() in data:
                found.append(f"{name} in the database ({where})")
    assert not found, "secrets in clear:\n" + "\n".join(found)
    # The log has a line per request, and nothing else went wrong while writing it.
    access = [line for line in log.splitlines() if re.search(r'"[A-Z]+ \S+ HTTP/1\.1" \d{3}', line)]
    assert len(access) >= rec.requests, (len(access), rec.requests, log[-3000:])
    assert "Traceback" not in log and "Logging error" not in log, log[-3000:]


# -- a credential sent in a path (a client's mistake) ------------------------------------------


def _paths_with_credentials(server: GrpcServerProcess) -> tuple[str, list[str]]:
    """Machine credentials sent where a machine's name goes; (the secret, the answers)."""
    with httpx.Client(base_url=server.url, timeout=60) as http:
        made = http.post("/api/v1/machines", json={"name": "lab-01", "owner": "x"})
        secret = made.json()["secret"]
        admin = _bearer(ADMIN)
        answers = [
            http.get(f"/api/v1/machines/lab-01:{secret}").text,
            http.get(f"/api/v1/machines/lab-01:{secret}/grants", headers=admin).text,
            http.post(f"/api/v1/machines/lab-01:{secret}/approve", headers=admin).text,
            http.get(f"/machines/lab-01:{secret}").text,
            http.get("/api/v1/runs", params={"machine": f"lab-01:{secret}"}).text,
        ]
    return secret, answers


def test_a_credential_sent_in_a_path_is_not_echoed(tmp_path: Path) -> None:
    with GrpcServerProcess(str(tmp_path / "farm.db"), tmp_path) as server:
        secret, answers = _paths_with_credentials(server)
    assert all(secret not in text for text in answers), answers


def test_a_credential_sent_in_a_path_is_hidden_in_the_access_log(tmp_path: Path) -> None:
    with GrpcServerProcess(
        str(tmp_path / "farm.db"), tmp_path, extra=["--log-level", "info"]
    ) as server:
        secret, _ = _paths_with_credentials(server)
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert secret not in log, [line for line in log.splitlines() if secret in line]
