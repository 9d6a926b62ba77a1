"""Reporting over gRPC (perffarm.v1 and gRPC's QPS reporter), with grpcio.

grpcio and the generated modules are imported when a ``GrpcReporter`` is made, so that
``perffarm.client`` (and its ``HttpReporter``) works without the grpc extra.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perffarm.client._documents import RunLike, run_json
from perffarm.client.errors import ReportError

if TYPE_CHECKING:
    from perffarm.proto.grpc_testing.control_pb2 import ScenarioResult
    from perffarm.proto.v1.perffarm_pb2 import DatapointBatch

DEFAULT_MAX_MESSAGE = 32 * 1024 * 1024


@dataclass(frozen=True)
class Submitted:
    """The server's answer to a run: ``outcome`` is ``stored`` or ``already-stored``."""

    id: str
    outcome: str
    machine: str
    machine_approved: bool
    message: str


@dataclass(frozen=True)
class Ack:
    """One stored batch: ``accepted`` datapoints (0 for a batch the server had already)."""

    test_id: str
    worker: str
    incarnation: str
    sequence: int
    accepted: int
    duplicate: bool


def _need_grpc() -> Any:
    try:
        import grpc
    except ImportError:
        raise ImportError(
            "GrpcReporter needs perffarm's 'grpc' extra: pip install 'perffarm[grpc]'"
        ) from None
    return grpc


try:
    import orjson

    def _dumps(value: Any) -> str:
        return orjson.dumps(value).decode()
except ImportError:  # pragma: no cover - orjson comes with the loadtest extra

    def _dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))


class GrpcReporter:
    """Reports to a perffarm server's gRPC address (``HOST:PORT``).

    ``token``: a machine's ``NAME:SECRET``, a user's upload token (then name ``machine``),
    or the admin token; ``loadtest_token`` for datapoint streams on servers that use one.
    ``tls=True`` (or ``root_certificates``, PEM bytes, for a private CA) speaks TLS.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        machine: str | None = None,
        loadtest_token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        timeout: float = 60.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
    ) -> None:
        grpc = self._grpc = _need_grpc()
        from perffarm.proto.v1 import perffarm_pb2, perffarm_pb2_grpc

        self._pb = perffarm_pb2
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if tls or root_certificates:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self.target = target
        self.timeout = timeout
        metadata = []
        if token:
            metadata.append(("authorization", f"Bearer {token}"))
        if machine:
            metadata.append(("x-perffarm-machine", machine))
        if loadtest_token:
            metadata.append(("x-perffarm-loadtest-token", loadtest_token))
        self._metadata = tuple(metadata)
        self._runs = perffarm_pb2_grpc.RunsStub(self._channel)
        self._loadtests = perffarm_pb2_grpc.LoadTestsStub(self._channel)

    def _failed(self, exc: Exception) -> ReportError:
        code = exc.code() if hasattr(exc, "code") else None
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        name = code.name if code is not None else None
        return ReportError(f"{self.target}: {name}: {detail}", name)

    # -- runs ------------------------------------------------------------------------

    def submit(self, run: RunLike) -> Submitted:
        """Store one run document (idempotent on its id, as over HTTP)."""
        request = self._pb.SubmitRunRequest(document=run_json(run))
        try:
            answer = self._runs.SubmitRun(request, metadata=self._metadata, timeout=self.timeout)
        except self._grpc.RpcError as exc:
            raise self._failed(exc) from None
        outcome = "stored" if answer.outcome == self._pb.STORED else "already-stored"
        return Submitted(
            answer.id, outcome, answer.machine, answer.machine_approved, answer.message
        )

    def results(
        self,
        user: str | None = None,
        *,
        all_users: bool = False,
        samples: bool = False,
        **filters: str,
    ) -> Iterator[dict[str, Any]]:
        """Results of ``user`` (the caller's own when None), or of everybody with
        ``all_users``; filters: machine, project, benchmark, metric. Pages are followed."""
        pb = self._pb
        flt = pb.ResultFilter(**filters)
        cursor = ""
        while True:
            try:
                if all_users:
                    request = pb.ListResultsRequest(filter=flt, cursor=cursor, samples=samples)
                    page = self._runs.ListAllResults(
                        request, metadata=self._metadata, timeout=self.timeout
                    )
                else:
                    request = pb.ListUserResultsRequest(
                        user=user or "", filter=flt, cursor=cursor, samples=samples
                    )
                    page = self._runs.ListUserResults(
                        request, metadata=self._metadata, timeout=self.timeout
                    )
            except self._grpc.RpcError as exc:
                raise self._failed(exc) from None
            for item in page.results:
                row = {
                    "id": item.id,
                    "run_id": item.run_id,
                    "project": item.project,
                    "machine": item.machine,
                    "owner": item.owner,
                    "benchmark": item.benchmark,
                    "params": json.loads(item.params_json or "{}"),
                    "metric": item.metric,
                    "unit": item.unit,
                    "direction": item.direction,
                    "n": item.n,
                }
                for name in ("branch", "commit", "mean", "median", "stdev", "min", "max"):
                    row[name] = getattr(item, name) if item.HasField(name) else None
                if samples:
                    row["samples"] = list(item.samples)
                yield row
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # -- gRPC's QPS driver -------------------------------------------------------------

    def report_scenario(
        self,
        result: ScenarioResult | dict[str, Any] | str | Path,
        *,
        project: str | None = None,
        tag: str | None = None,
        branch: str | None = None,
        commit: str | None = None,
    ) -> None:
        """Send a ``grpc.testing.ScenarioResult`` as qps_json_driver does: the message, its
        protobuf JSON as a dict, or a ``--scenario_result_file`` path."""
        from google.protobuf.json_format import ParseDict, ParseError

        from perffarm.proto.grpc_testing import control_pb2, report_qps_scenario_service_pb2_grpc

        if isinstance(result, str | Path):
            try:
                result = json.loads(Path(result).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ReportError(f"cannot read the scenario result {result}: {exc}") from None
        if isinstance(result, dict):
            try:
                result = ParseDict(result, control_pb2.ScenarioResult(), ignore_unknown_fields=True)
            except ParseError as exc:
                raise ReportError(f"not a grpc.testing.ScenarioResult: {exc}") from None
        metadata = list(self._metadata)
        for key, value in (("project", project), ("tag", tag), ("branch", branch),
                           ("commit", commit)):  # fmt: skip
            if value:
                metadata.append((f"x-perffarm-{key}", value))
        stub = report_qps_scenario_service_pb2_grpc.ReportQpsScenarioServiceStub(self._channel)
        try:
            stub.ReportScenario(result, metadata=metadata, timeout=self.timeout)
        except self._grpc.RpcError as exc:
            raise self._failed(exc) from None

    # -- load tests ------------------------------------------------------------------

    def batch(self, test_id: str, batch: dict[str, Any] | DatapointBatch) -> DatapointBatch:
        """A batch in the HTTP shape (``{"worker", "incarnation", "sequence", "datapoints":
        [{"peerId", "timestamp"?, "metrics"}], "final"?, "health"?, "latency"?}``) as the
        message."""
        pb = self._pb
        if not isinstance(batch, dict):  # already the message
            if not batch.test_id:
                batch.test_id = test_id
            return batch
        points = []
        for point in batch.get("datapoints", ()):
            message = pb.Datapoint(peer_id=point["peerId"], metrics_json=_dumps(point["metrics"]))
            if point.get("timestamp") is not None:
                message.timestamp = point["timestamp"]
            points.append(message)
        return pb.DatapointBatch(
            test_id=test_id,
            worker=batch["worker"],
            incarnation=batch["incarnation"],
            sequence=batch["sequence"],
            datapoints=points,
            final=bool(batch.get("final", False)),
            health_json=_dumps(batch["health"]) if batch.get("health") else "",
            latency_json=_dumps(batch["latency"]) if batch.get("latency") else "",
        )

    def stream_datapoints(
        self, test_id: str, batches: Iterable[dict[str, Any] | DatapointBatch]
    ) -> list[Ack]:
        """Send every batch over one stream; one Ack per batch, in order. After a failure,
        send again the batches without an Ack: duplicates are counted once."""
        requests = (self.batch(test_id, b) for b in batches)
        acks = []
        try:
            for ack in self._loadtests.StreamDatapoints(requests, metadata=self._metadata):
                acks.append(
                    Ack(
                        ack.test_id,
                        ack.worker,
                        ack.incarnation,
                        ack.sequence,
                        ack.accepted,
                        ack.duplicate,
                    )
                )
        except self._grpc.RpcError as exc:
            error = self._failed(exc)
            error.acks = acks  # type: ignore[attr-defined]
            raise error from None
        return acks

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GrpcReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
