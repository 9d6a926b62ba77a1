"""Messages to perffarm's types and back: ScenarioResult -> run, result rows -> messages.

A ``grpc.testing.ScenarioResult`` becomes the JSON the QPS driver writes with
``--scenario_result_file`` (``MessageToDict``: lowerCamelCase names, 64-bit integers as
strings, defaults printed as the driver prints them) and goes through the
``grpc-scenario`` adapter: a result received over gRPC and one read from a file give the
same run.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp

from perffarm import __version__
from perffarm.adapters.base import AdapterError, InputSource
from perffarm.adapters.grpc_scenario import GrpcScenarioAdapter
from perffarm.analysis.statistics import summarize
from perffarm.model import Environment, RunDocument, Source
from perffarm.model.api import ResultRow
from perffarm.model.run import Agent, MeasurementRecord, MeasurementStatus
from perffarm.proto.grpc_testing import control_pb2
from perffarm.proto.v1 import perffarm_pb2 as pb

#: Run ids of reported scenario results: uuid5(this, machine id + the message's sha256), so
#: a result sent twice is one run.
SCENARIO_NAMESPACE = uuid.UUID("6f1d3c8e-4b7a-5c2e-9a41-0d6b8f2e7c15")
DEFAULT_PROJECT = "grpc-qps"
MEASUREMENT_TYPE = "grpc-qps"


class Malformed(ValueError):
    """The message cannot be stored; ``field`` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def scenario_json(result: control_pb2.ScenarioResult) -> dict[str, Any]:
    """The message as the QPS driver's ``--scenario_result_file`` JSON."""
    return MessageToDict(result, always_print_fields_with_no_presence=True)


def _time(stamp: Any) -> datetime | None:
    if not isinstance(stamp, str):
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def scenario_run(
    result: control_pb2.ScenarioResult,
    *,
    machine_id: int,
    machine: str,
    project: str | None,
    tag: str | None,
    branch: str | None,
    commit: str | None,
    reporter: dict[str, Any],
) -> RunDocument:
    """The run of one reported scenario result; Malformed says what is missing."""
    if not result.HasField("scenario"):
        raise Malformed("scenario", "missing: the result names no scenario")
    if not result.scenario.name:
        raise Malformed("scenario.name", "empty: the scenario needs a name")
    if not result.HasField("summary"):
        raise Malformed("summary", "missing: the result has no summary figures")
    document = scenario_json(result)
    text = json.dumps(document)
    try:
        parsed = GrpcScenarioAdapter().parse(InputSource.from_text(text))
    except AdapterError as exc:
        raise Malformed("scenario_result", str(exc)) from None
    for item in parsed.results:
        item.summary = summarize(item.samples)
    digest = hashlib.sha256(result.SerializeToString(deterministic=True)).hexdigest()
    received = datetime.now(UTC)
    summary = document.get("summary", {})
    started = _time(summary.get("startTime")) or received
    finished = _time(summary.get("endTime"))
    if finished is not None and finished < started:
        finished = None
    name = result.scenario.name
    try:
        return RunDocument(
            id=uuid.uuid5(SCENARIO_NAMESPACE, f"{machine_id}:{digest}"),
            project=project or DEFAULT_PROJECT,
            tag=tag or None,
            suite=name,
            started_at=started,
            finished_at=finished,
            machine=machine,
            source=Source(branch=branch or None, commit=commit or None),
            environment=Environment(
                sections={"grpc-qps": parsed.environment, "reporter": reporter}
            ),
            measurements=[
                MeasurementRecord(
                    name=name,
                    type=MEASUREMENT_TYPE,
                    status=MeasurementStatus.OK,
                    started_at=started,
                    finished_at=finished,
                )
            ],
            results=parsed.results,
            attachments=parsed.attachments,
            agent=Agent(version=__version__, command=["grpc.testing.ReportQpsScenarioService"]),
        )
    except ValueError as exc:
        raise Malformed("scenario_result", str(exc).splitlines()[0]) from None


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def result_message(row: ResultRow) -> pb.Result:
    message = pb.Result(
        id=row.id,
        run_id=row.run_id,
        project=row.project,
        machine=row.machine,
        owner=row.owner,
        benchmark=row.benchmark,
        params_json=json.dumps(row.params, sort_keys=True),
        metric=row.metric,
        unit=row.unit,
        direction=str(row.direction),
        n=row.n,
        samples=row.samples or [],
    )
    for name in ("branch", "commit", "mean", "median", "stdev", "min", "max", "ci_low", "ci_high"):
        value = getattr(row, name)
        if value is not None:
            setattr(message, name, value)
    if (stamp := _timestamp(row.commit_time)) is not None:
        message.commit_time.CopyFrom(stamp)
    return message
