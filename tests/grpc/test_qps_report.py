"""gRPC's QPS driver reporting service, over the real protocol, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import grpc
import pytest
from google.protobuf.json_format import Parse

from perffarm.proto.grpc_testing import control_pb2, report_qps_scenario_service_pb2_grpc
from tests.grpc.support import GrpcServerProcess, bearer, runs_of

SAMPLE = Path(__file__).parents[1] / "data" / "adapters" / "grpc-scenario" / "scenario_result.json"
NAME = "cpp_protobuf_sync_unary_qps_unconstrained_secure"


def scenario_result() -> control_pb2.ScenarioResult:
    """The driver's --scenario_result_file sample, as the message the driver sends."""
    return Parse(SAMPLE.read_text(), control_pb2.ScenarioResult())


def report(server: GrpcServerProcess, message: control_pb2.ScenarioResult, metadata) -> None:  # type: ignore[no-untyped-def]
    with server.channel() as channel:
        stub = report_qps_scenario_service_pb2_grpc.ReportQpsScenarioServiceStub(channel)
        stub.ReportScenario(message, metadata=metadata, timeout=30)


def test_a_reported_scenario_is_a_run_with_converted_metrics(server: GrpcServerProcess) -> None:
    token = server.register("qps-lab")
    metadata = [*bearer(token), ("x-perffarm-project", "grpc"), ("x-perffarm-tag", "nightly")]
    report(server, scenario_result(), metadata)

    (run,) = runs_of(server, project="grpc")
    assert (run["machine"], run["tag"]) == ("qps-lab", "nightly")
    with server.http() as client:
        document = client.get(f"/runs/{run['id']}").json()
    results = {r["metric"]: r for r in document["results"] if r["benchmark"] == NAME}
    assert (results["qps"]["samples"], results["qps"]["unit"]) == ([104107.25], "1/s")
    assert results["qps"]["direction"] == "higher"
    latency = results["latency99"]
    assert (latency["unit"], latency["original_unit"]) == ("s", "ns")
    assert latency["samples"] == pytest.approx([3045678.5e-9])
    assert set(results) >= {
        "qpsPerServerCore", "latency50", "latency90", "latency95", "latency999",
        "serverSystemTime", "serverUserTime", "clientSystemTime", "clientUserTime",
        "serverCpuUsage", "successfulRequestsPerSecond", "failedRequestsPerSecond",
        "clientPollsPerRequest", "serverPollsPerRequest", "serverQueriesPerCpuSec",
        "clientQueriesPerCpuSec",
    }  # fmt: skip
    assert results["serverCpuUsage"]["unit"] == "%"
    assert results["qps"]["extra"]["request_results"] == {"0": 6146, "14": 215}
    params = results["qps"]["params"]
    assert params["client_type"] == "SYNC_CLIENT"
    assert params["rpc_type"] == "UNARY"
    assert (params["client_channels"], params["benchmark_seconds"], params["load"]) == (
        64,
        30,
        "closed-loop",
    )
    assert document["environment"]["sections"]["grpc-qps"]["scenario"]["name"] == NAME
    assert document["environment"]["sections"]["reporter"]["credential"] == "machine"
    (histogram,) = [a for a in document["attachments"] if a["name"].endswith("latencies.json")]
    merged = json.loads(base64.b64decode(histogram["content"]))
    assert merged["bucket"] == [0, 12, 340, 2210, 518, 40, 3]
    assert (merged["unit"], merged["resolution"], merged["count"]) == ("ns", 0.01, 3123.0)

    # The series endpoint sees the converted figures too.
    with server.http() as client:
        rows = client.get("/results", params={"project": "grpc", "metric": "latency50"})
    assert rows.json()["items"][0]["unit"] == "s"


def test_the_same_result_twice_is_one_run(server: GrpcServerProcess) -> None:
    token = server.register()
    message = scenario_result()
    report(server, message, bearer(token))
    report(server, message, bearer(token))
    assert len(runs_of(server, project="grpc-qps")) == 1
    changed = scenario_result()
    changed.summary.qps = 1.0
    report(server, changed, bearer(token))
    assert len(runs_of(server, project="grpc-qps")) == 2


def test_reports_without_credentials_use_the_configured_machine(tmp_path: Path) -> None:
    with GrpcServerProcess(
        str(tmp_path / "farm.db"), tmp_path, extra=["--grpc-qps-machine", "qps-driver"]
    ) as server:
        with pytest.raises(grpc.RpcError) as refused:
            report(server, scenario_result(), None)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "--grpc-qps-machine" in refused.value.details()
        server.register("qps-driver")
        report(server, scenario_result(), None)
        (run,) = runs_of(server)
        assert run["machine"] == "qps-driver"


def test_malformed_results_are_invalid_and_store_nothing(server: GrpcServerProcess) -> None:
    token = server.register()
    without_summary = scenario_result()
    without_summary.ClearField("summary")
    nameless = scenario_result()
    nameless.scenario.name = ""
    for message, field in ((without_summary, "summary"), (nameless, "scenario.name")):
        with pytest.raises(grpc.RpcError) as refused:
            report(server, message, bearer(token))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in refused.value.details()
    with server.channel() as channel:
        raw = channel.unary_unary("/grpc.testing.ReportQpsScenarioService/ReportScenario")
        with pytest.raises(grpc.RpcError) as refused:
            raw(b"\x0a\xff\xff\xff\xff", metadata=bearer(token), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "grpc.testing.ScenarioResult" in refused.value.details()
    assert runs_of(server) == []
