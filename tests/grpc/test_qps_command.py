"""`format: grpc-qps`: `perffarm run` wraps gRPC's qps_json_driver.

The driver is not installed on test machines: a small stand-in script plays it, writing a
ScenarioResult JSON file where ``--scenario_result_file`` says, as the real one does.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from perffarm.agent.config import load_suite
from perffarm.agent.runner import RunSettings, run_suite
from perffarm.agent.store import LocalStore
from tests.grpc.test_qps_report import NAME, SAMPLE

FAKE_DRIVER = """\
import json, sys
flags = dict(a.split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
result = json.load(open(sys.argv[1]))

with open(flags["--scenario_result_file"], "w") as out:
    json.dump(result, out)
print("QPS:", result["summary"]["qps"])
"""


def test_a_command_measurement_runs_the_qps_driver(tmp_path: Path) -> None:
    (tmp_path / "qps_json_driver.py").write_text(FAKE_DRIVER)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "project: grpc\nrepeat: 2\nwarmup: 0\nsampler: {enabled: false}\n"
        "measurements:\n"
        "  - name: unary\n"
        "    type: command\n"
        f"    command: [{sys.executable}, qps_json_driver.py, {SAMPLE}]\n"
        "    format: grpc-qps\n"
        "    record_time: false\n"
    )
    with LocalStore(tmp_path / "store.db") as store:
        document = run_suite(load_suite(suite), store, settings=RunSettings(tag="nightly"))
    assert document.status == "ok", document.error
    assert document.tag == "nightly"
    results = {r.metric: r for r in document.results if r.benchmark == NAME}
    assert results["qps"].samples == [104107.25, 104107.25]
    assert (results["latency50"].unit, results["latency50"].original_unit) == ("s", "ns")
    assert results["qps"].params["rpc_type"] == "UNARY"
    assert results["qps"].measurement == "unary"
    # The run carries the machine's description as every run does.
    assert document.environment.sections.get("cpu")
    (histogram,) = [a for a in document.attachments if a.name.endswith("latencies.json")]
    assert histogram.name == "unary.grpc-scenario.latencies.json"
    assert json.loads(base64.b64decode(histogram.content))["count"] == 3123.0


def test_a_driver_that_writes_no_result_fails_clearly(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "project: grpc\nrepeat: 1\nwarmup: 0\nsampler: {enabled: false}\n"
        "measurements:\n"
        "  - name: unary\n"
        "    type: command\n"
        "    command: 'true'\n"
        "    format: grpc-qps\n"
    )
    with LocalStore(tmp_path / "store.db") as store:
        document = run_suite(load_suite(suite), store, settings=RunSettings())
    assert document.status == "failed"
    (record,) = document.measurements
    assert "--scenario_result_file" in (record.error or "")
