"""Load-test datapoints over one gRPC stream: complete, acknowledged, never doubled."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from perffarm.proto.v1 import perffarm_pb2 as pb
from perffarm.proto.v1 import perffarm_pb2_grpc
from tests.grpc.support import GrpcServerProcess, bearer
from tests.server.support import ADMIN

METRICS = json.dumps({"sent": 10, "received": 9, "latency": 3.25, "position": [1.5, 0, 2.5]})


def create_test(server: GrpcServerProcess, test_id: str = "t1") -> None:
    with server.http() as client:
        answer = client.post("/loadtests", json={"id": test_id, "started": True})
        answer.raise_for_status()


def datapoint_count(server: GrpcServerProcess, test_id: str = "t1") -> int:
    with server.http() as client:
        return client.get(f"/loadtests/{test_id}").json()["datapoints"]


def batch(sequence: int, size: int, test_id: str = "t1", worker: str = "w1") -> pb.DatapointBatch:
    return pb.DatapointBatch(
        test_id=test_id,
        worker=worker,
        incarnation="i1",
        sequence=sequence,
        datapoints=[
            pb.Datapoint(peer_id=f"peer-{n}", timestamp=1_700_000_000_000 + n, metrics_json=METRICS)
            for n in range(size)
        ],
    )


def stream(
    server: GrpcServerProcess, batches: Iterator[pb.DatapointBatch] | list, metadata
) -> list[pb.BatchAck]:  # type: ignore[no-untyped-def]
    with server.channel() as channel:
        stub = perffarm_pb2_grpc.LoadTestsStub(channel)
        return list(stub.StreamDatapoints(iter(batches), metadata=metadata, timeout=300))


@pytest.mark.slow
def test_100000_datapoints_over_one_stream_are_all_stored(server: GrpcServerProcess) -> None:
    create_test(server)
    batches, size = 20, 5000
    acks = stream(server, (batch(n, size) for n in range(batches)), bearer(ADMIN))
    assert [a.sequence for a in acks] == list(range(batches))
    assert all(a.accepted == size and not a.duplicate for a in acks)
    assert datapoint_count(server) == batches * size == 100_000
    with server.http() as client:
        page = client.get("/loadtests/t1/datapoints", params={"limit": 2}).json()
    assert page["datapoints"][0]["metrics"] == json.loads(METRICS)
    assert page["datapoints"][0]["peerId"] == "peer-0"

    # A worker that lost its connection reconnects and resends what it holds no ack for:
    # the batch already stored is acknowledged as a duplicate and counted once.
    again = stream(server, [batch(batches - 1, size), batch(batches, 10)], bearer(ADMIN))
    assert [(a.sequence, a.accepted, a.duplicate) for a in again] == [
        (batches - 1, 0, True),
        (batches, 10, False),
    ]
    assert datapoint_count(server) == 100_010


def test_a_machine_or_the_loadtest_token_may_stream(sqlite_server: GrpcServerProcess) -> None:
    create_test(sqlite_server)
    token = sqlite_server.register()
    (ack,) = stream(sqlite_server, [batch(0, 3)], bearer(token))
    assert ack.accepted == 3
    with pytest.raises(grpc.RpcError) as refused:
        stream(sqlite_server, [batch(1, 3)], [("x-perffarm-loadtest-token", "not-the-token")])
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert datapoint_count(sqlite_server) == 3


def test_bad_batches_end_the_stream_and_keep_what_was_acknowledged(
    sqlite_server: GrpcServerProcess,
) -> None:
    create_test(sqlite_server)
    bad_json = batch(1, 5)
    bad_json.datapoints[3].metrics_json = "{not json"
    not_object = batch(1, 5)
    not_object.datapoints[2].metrics_json = "[1, 2]"
    injected = batch(1, 2)
    injected.datapoints[0].metrics_json = '{"a": 1}}, {"peerId": "x", "metrics": {}'
    no_peer = batch(1, 2)
    no_peer.datapoints[1].peer_id = ""
    # Issue 17, cases 1-2: a number no double holds, nesting no reader survives.
    huge = batch(1, 2)
    huge.datapoints[1].metrics_json = '{"sent": 1' + "0" * 5000 + "}"
    deep = batch(1, 2)
    deep.datapoints[0].metrics_json = '{"x": ' + "[" * 2000 + "]" * 2000 + "}"
    for bad, field in (
        (bad_json, "datapoints[3].metrics_json"),
        (not_object, "datapoints[2].metrics_json"),
        (injected, "datapoints"),
        (no_peer, "datapoints[1].peer_id"),
        (huge, "datapoints[1].metrics_json"),
        (deep, "datapoints[0].metrics_json"),
    ):
        acks: list = []
        with pytest.raises(grpc.RpcError) as refused, sqlite_server.channel() as channel:
            stub = perffarm_pb2_grpc.LoadTestsStub(channel)
            for ack in stub.StreamDatapoints(
                iter([batch(0, 4), bad]), metadata=bearer(ADMIN), timeout=60
            ):
                acks.append(ack)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in refused.value.details()
        assert len(acks) == 1
    assert datapoint_count(sqlite_server) == 4


def test_unknown_and_finished_tests(sqlite_server: GrpcServerProcess) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        stream(sqlite_server, [batch(0, 1, test_id="nope")], bearer(ADMIN))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    create_test(sqlite_server, "done")
    with sqlite_server.http() as client:
        client.post("/loadtests/done/finish").raise_for_status()
    with pytest.raises(grpc.RpcError) as refused:
        stream(sqlite_server, [batch(0, 1, test_id="done")], bearer(ADMIN))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "finished" in refused.value.details()
