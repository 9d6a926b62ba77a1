"""perffarm.v1.Runs over gRPC: the same ingest and queries as HTTP."""

from __future__ import annotations

import json

import grpc
import pytest

from perffarm.proto.v1 import perffarm_pb2 as pb
from perffarm.proto.v1 import perffarm_pb2_grpc
from tests.grpc.support import GrpcServerProcess, bearer, runs_of
from tests.grpc.test_auth import refused, submit
from tests.server.support import make_run


def test_submit_is_idempotent_on_the_run_id(server: GrpcServerProcess) -> None:
    token = server.register("lab-01")
    run = make_run(machine="lab-01")
    first = submit(server, run.to_json().encode(), bearer(token))
    assert (first.outcome, first.id, first.machine, first.machine_approved) == (
        pb.STORED,
        str(run.id),
        "lab-01",
        True,
    )
    assert submit(server, run.to_json().encode(), bearer(token)).outcome == pb.ALREADY_STORED
    other = run.model_copy(update={"tag": "changed"})
    error = refused(lambda: submit(server, other.to_json().encode(), bearer(token)))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    (stored,) = runs_of(server)
    assert (stored["id"], stored["tag"]) == (str(run.id), None)
    # Over HTTP the same document is "already stored" too: one ingest, two transports.
    with server.http(token) as client:
        answer = client.post(
            "/runs", content=run.to_json(), headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 200, answer.text


def test_results_of_a_user_and_of_everybody(server: GrpcServerProcess) -> None:
    alice = server.register("alice-box", owner="alice")
    bob = server.register("bob-box", owner="bob")
    submit(server, make_run(machine="alice-box", results=2).to_json().encode(), bearer(alice))
    submit(server, make_run(machine="bob-box", results=3).to_json().encode(), bearer(bob))
    with server.channel() as channel:
        stub = perffarm_pb2_grpc.RunsStub(channel)
        everybody = stub.ListAllResults(pb.ListResultsRequest(), timeout=30)
        assert len(everybody.results) == 5
        assert {r.owner for r in everybody.results} == {"alice", "bob"}
        alices = stub.ListUserResults(pb.ListUserResultsRequest(user="alice"), timeout=30)
        assert [r.machine for r in alices.results] == ["alice-box", "alice-box"]
        first = alices.results[0]
        assert (first.metric, first.unit, first.n, first.mean) == ("latency", "s", 3, 2.0)
        assert json.loads(first.params_json) == {"clients": 0}
        assert first.HasField("branch") and first.branch == "main"
        assert first.commit_time.ToDatetime().year == 2026
        # A machine's own user: its owner.
        own = stub.ListUserResults(
            pb.ListUserResultsRequest(samples=True), metadata=bearer(bob), timeout=30
        )
        assert {r.machine for r in own.results} == {"bob-box"}
        assert list(own.results[0].samples) == [1.0, 2.0, 3.0]
        paged = stub.ListAllResults(pb.ListResultsRequest(limit=2), timeout=30)
        assert len(paged.results) == 2 and paged.next_cursor
        rest = stub.ListAllResults(
            pb.ListResultsRequest(limit=10, cursor=paged.next_cursor), timeout=30
        )
        assert len(rest.results) == 3 and not rest.next_cursor
        for request in (pb.ListResultsRequest(limit=5000), pb.ListResultsRequest(cursor="bad")):
            error = refused(lambda r=request: stub.ListAllResults(r, timeout=30))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        error = refused(lambda: stub.ListUserResults(pb.ListUserResultsRequest(), timeout=30))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "user" in error.details()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_unapproved_machines_are_hidden(server: GrpcServerProcess) -> None:
    token = server.register("new-box", approve=False)
    answer = submit(server, make_run(machine="new-box").to_json().encode(), bearer(token))
    assert not answer.machine_approved
    assert "perffarm machine approve new-box" in answer.message
    with server.channel() as channel:
        stub = perffarm_pb2_grpc.RunsStub(channel)
        assert len(stub.ListAllResults(pb.ListResultsRequest(), timeout=30).results) == 0


@pytest.mark.postgres
def test_several_server_processes_share_the_grpc_port(postgres_url: str, tmp_path) -> None:
    """With --workers 2 every process serves gRPC on the one port (SO_REUSEPORT): runs sent
    over fresh connections, whichever process takes each, are all stored once."""
    with GrpcServerProcess(postgres_url, tmp_path, extra=["--workers", "2"]) as server:
        token = server.register("lab-01")
        sent = [make_run(machine="lab-01") for _ in range(8)]
        for run in sent:
            assert submit(server, run.to_json().encode(), bearer(token)).outcome == pb.STORED
        stored = runs_of(server, limit=100)
        assert sorted(r["id"] for r in stored) == sorted(str(r.id) for r in sent)
