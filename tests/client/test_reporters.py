"""perffarm.client against a real server: both transports, three lines each."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from perffarm.client import GrpcReporter, HttpReporter, ReportError
from tests.grpc.support import GrpcServerProcess, runs_of
from tests.grpc.test_qps_report import SAMPLE
from tests.grpc.test_stream import create_test, datapoint_count
from tests.server.support import ADMIN, make_run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServerProcess]:
    tmp = tmp_path_factory.mktemp("client")
    with GrpcServerProcess(str(tmp / "farm.db"), tmp) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: GrpcServerProcess) -> str:
    return server.register("client-box")


def test_three_lines_over_grpc(server: GrpcServerProcess, token: str) -> None:
    run = make_run(machine="client-box", project="grpc-client")
    reporter = GrpcReporter(server.target, token=token)
    answer = reporter.submit(run)
    assert (answer.outcome, answer.id, answer.machine) == ("stored", str(run.id), "client-box")
    assert reporter.submit(run.model_dump(mode="json", by_alias=True)).outcome == "already-stored"
    reporter.close()
    assert [r["id"] for r in runs_of(server, project="grpc-client")] == [str(run.id)]


def test_three_lines_over_http(server: GrpcServerProcess, token: str) -> None:
    run = make_run(machine="client-box", project="http-client")
    with HttpReporter(server.url, token=token) as reporter:
        assert reporter.submit(run)["outcome"] == "stored"
        assert reporter.submit(run.to_json())["outcome"] == "already-stored"
    assert len(runs_of(server, project="http-client")) == 1


def test_scenario_results_and_queries(server: GrpcServerProcess, token: str) -> None:
    with GrpcReporter(server.target, token=token) as reporter:
        reporter.report_scenario(SAMPLE, project="qps", tag="nightly")
        rows = list(reporter.results(all_users=True, project="qps", metric="qps"))
        assert [(r["unit"], r["mean"]) for r in rows] == [("1/s", 104107.25)]
        mine = list(reporter.results(project="qps"))
        assert {r["owner"] for r in mine} == {"alice"}
        assert len(mine) > 10


def test_datapoint_streams(server: GrpcServerProcess, token: str) -> None:
    create_test(server, "client-test")
    batches = [
        {
            "worker": "w",
            "incarnation": "i",
            "sequence": n,
            "datapoints": [{"peerId": f"p{k}", "metrics": {"sent": k}} for k in range(100)],
        }
        for n in range(5)
    ]
    with GrpcReporter(server.target, token=token) as reporter:
        acks = reporter.stream_datapoints("client-test", batches)
        assert [(a.sequence, a.accepted, a.duplicate) for a in acks] == [
            (n, 100, False) for n in range(5)
        ]
        assert reporter.stream_datapoints("client-test", batches[-1:])[0].duplicate
    with HttpReporter(server.url, token=ADMIN) as http:
        more = {**batches[0], "sequence": 5}
        assert http.send_datapoints("client-test", more) == {"accepted": 100, "duplicate": False}
    assert datapoint_count(server, "client-test") == 600


def test_errors_are_readable(server: GrpcServerProcess) -> None:
    run = make_run(machine="client-box")
    with (
        GrpcReporter(server.target, token="client-box:wrong") as reporter,
        pytest.raises(ReportError) as failed,
    ):
        reporter.submit(run)
    assert failed.value.code == "UNAUTHENTICATED"
    assert "wrong machine name or secret" in str(failed.value)
    with (
        HttpReporter(server.url, token="client-box:wrong") as reporter,
        pytest.raises(ReportError) as failed,
    ):
        reporter.submit(run)
    assert failed.value.code == 401
    with pytest.raises(ValueError):
        GrpcReporter(server.target).submit({"project": "no machine"})
    with (
        HttpReporter("http://127.0.0.1:9", token="x") as reporter,
        pytest.raises(ReportError, match="cannot reach"),
    ):
        reporter.submit(run)


def test_the_client_does_not_import_the_server() -> None:
    code = (
        "import sys, perffarm.client as c; c.GrpcReporter('127.0.0.1:1');"
        "bad = sorted(m for m in sys.modules if m.startswith(('perffarm.server', 'fastapi',"
        " 'sqlalchemy', 'perffarm.agent')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scenario_files_that_cannot_be_read(server: GrpcServerProcess, tmp_path: Path) -> None:
    with GrpcReporter(server.target, token="x:y") as reporter:
        with pytest.raises(ReportError, match="cannot read"):
            reporter.report_scenario(tmp_path / "missing.json")
        (tmp_path / "bad.json").write_text('{"summary": {"qps": "lots"}}')
        with pytest.raises(ReportError, match="ScenarioResult"):
            reporter.report_scenario(tmp_path / "bad.json")
