"""Credentials over gRPC mean what they mean over HTTP; refusals store nothing."""

from __future__ import annotations

import grpc
import pytest

from perffarm.proto.v1 import perffarm_pb2 as pb
from perffarm.proto.v1 import perffarm_pb2_grpc
from tests.grpc.support import GrpcServerProcess, bearer, runs_of, user_token
from tests.grpc.test_qps_report import report, scenario_result
from tests.grpc.test_stream import batch, create_test, datapoint_count, stream
from tests.server.support import make_run


def submit(server: GrpcServerProcess, document: bytes, metadata) -> pb.SubmitRunResponse:  # type: ignore[no-untyped-def]
    with server.channel() as channel:
        stub = perffarm_pb2_grpc.RunsStub(channel)
        return stub.SubmitRun(pb.SubmitRunRequest(document=document), metadata=metadata, timeout=30)


def refused(call) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_wrong_and_missing_credentials(server: GrpcServerProcess, database: str) -> None:
    token = server.register("lab-01")
    document = make_run(machine="lab-01").to_json().encode()
    cases = {
        "missing": None,
        "wrong secret": bearer("lab-01:not-the-secret"),
        "unknown machine": bearer("nobody:secret"),
        "not a token": bearer("garbage"),
        "not bearer": [("authorization", "Basic dXNlcjpwYXNz")],
        "unknown user token": bearer("pft_abcdefghijkl_" + "x" * 43),
    }
    for case, metadata in cases.items():
        error = refused(lambda m=metadata: submit(server, document, m))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, case
        assert error.details(), case
        error = refused(lambda m=metadata: report(server, scenario_result(), m))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, case
    create_test(server)
    error = refused(lambda: stream(server, [batch(0, 5)], bearer("lab-01:wrong")))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = refused(lambda: stream(server, [batch(0, 5)], None))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert runs_of(server) == []
    assert datapoint_count(server) == 0
    assert submit(server, document, bearer(token)).outcome == pb.STORED


def test_valid_credentials_that_may_not(server: GrpcServerProcess, database: str) -> None:
    server.register("lab-01", owner="alice")
    reader = user_token(database, "reader", scope="read")
    uploader = user_token(database, "uploader", scope="upload")
    document = make_run(machine="lab-01").to_json().encode()
    with_machine = [("x-perffarm-machine", "lab-01")]
    error = refused(lambda: submit(server, document, [*bearer(reader), *with_machine]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "scope" in error.details()
    # A user's upload token may only upload as a machine the user owns.
    error = refused(lambda: submit(server, document, [*bearer(uploader), *with_machine]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "lab-01" in error.details()
    error = refused(lambda: report(server, scenario_result(), [*bearer(uploader), *with_machine]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = refused(lambda: submit(server, document, bearer(uploader)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "x-perffarm-machine" in error.details()
    create_test(server)
    error = refused(lambda: stream(server, [batch(0, 5)], bearer(reader)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert runs_of(server) == []
    assert datapoint_count(server) == 0


def test_a_user_uploads_as_an_own_machine(server: GrpcServerProcess, database: str) -> None:
    token = user_token(database, "carol")
    with server.http(token) as client:
        client.post("/machines", json={"name": "carol-box", "owner": "carol"}).raise_for_status()
    metadata = [*bearer(token), ("x-perffarm-machine", "carol-box")]
    answer = submit(server, make_run(machine="carol-box").to_json().encode(), metadata)
    assert (answer.outcome, answer.machine) == (pb.STORED, "carol-box")
    report(server, scenario_result(), metadata)
    stored = runs_of(server)
    assert len(stored) == 2


def test_malformed_run_documents(server: GrpcServerProcess) -> None:
    token = server.register()
    bad = make_run().model_dump(mode="json", by_alias=True)
    bad["results"][0]["samples"] = "many"
    import json

    cases = [
        (b"not json", "document"),
        (json.dumps(bad).encode(), "document.results.0.samples"),
        (json.dumps({**bad, "unknown_field": 1}).encode(), "unknown_field"),
    ]
    for document, field in cases:
        error = refused(lambda d=document: submit(server, d, bearer(token)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in error.details()
    with server.channel() as channel:
        raw = channel.unary_unary("/perffarm.v1.Runs/SubmitRun")
        error = refused(lambda: raw(b"\xff\x01garbage", metadata=bearer(token), timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "perffarm.v1.SubmitRunRequest" in error.details()
    assert runs_of(server) == []


def test_a_stranger_writes_to_no_load_test(server: GrpcServerProcess, database: str) -> None:
    """Issue 16, case 2 over gRPC: an unapproved, anonymously registered machine and a user
    who did not make the test are refused; nothing is stored."""
    create_test(server)  # the admin's test
    stranger = server.register("x-01", owner="nobody", approve=False)
    error = refused(lambda: stream(server, [batch(0, 5)], bearer(stranger)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not approved" in error.details()
    dave = user_token(database, "dave", scope="upload")
    error = refused(lambda: stream(server, [batch(0, 5)], bearer(dave)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "creator" in error.details()
    assert datapoint_count(server) == 0
    worker = server.register("w-01")  # approved machines run the workers
    assert [ack.accepted for ack in stream(server, [batch(0, 5)], bearer(worker))] == [5]
