"""The gRPC methods: each checks the caller, then calls the code the HTTP routes call.

Handlers receive the raw request bytes and decode them themselves, so that a message that
does not decode is INVALID_ARGUMENT with a readable detail (grpcio would answer INTERNAL).
Blocking database work runs in a thread, as the HTTP routes do; errors are mapped once,
in ``calls.guarded``: a domain error by its kind, the database unreachable is UNAVAILABLE,
a refusal keeps its code.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import orjson
from fastapi import FastAPI
from google.protobuf.message import DecodeError, Message
from pydantic import ValidationError

from perffarm.model import RunDocument
from perffarm.model.api import Outcome, RunOutcome
from perffarm.proto.grpc_testing import control_pb2
from perffarm.proto.v1 import perffarm_pb2 as pb
from perffarm.server.core.paging import MAX_PAGE
from perffarm.server.core.principal import Machine, Principal
from perffarm.server.grpc import convert
from perffarm.server.grpc.calls import (
    AUTHORIZATION,
    INVALID,
    LOADTEST_TOKEN_KEY,
    MACHINE_KEY,
    Refused,
    guarded,
    loadtest_writer,
    metadata_value,
    resolve,
    upload_machine,
)
from perffarm.server.services.ingest import field_errors
from perffarm.server.services.loadtest_batches import BatchError, parse_batch
from perffarm.server.services.loadtests import ingest_batch
from perffarm.server.store import results

M = TypeVar("M", bound=Message)
_UNAPPROVED = (
    "machine {name!r} is not approved yet: its runs are stored but hidden until an admin "
    "runs `perffarm machine approve {name}`"
)
PROJECT_KEY = "x-perffarm-project"
TAG_KEY = "x-perffarm-tag"
BRANCH_KEY = "x-perffarm-branch"
COMMIT_KEY = "x-perffarm-commit"


def decode(message_type: type[M], raw: bytes) -> M:
    try:
        return message_type.FromString(raw)
    except (DecodeError, RuntimeError, ValueError) as exc:
        name = message_type.DESCRIPTOR.full_name
        raise Refused(INVALID, f"the request is not a valid {name} message ({exc})") from None


#: Batches of one datapoint stream parsed and stored concurrently.
STREAM_IN_FLIGHT = 3


class Services:
    """Every gRPC method of the results server, on one FastAPI app's state."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.state = app.state
        self.settings = app.state.settings
        self.engine = app.state.engine
        self.ingestor = app.state.ingestor

    # -- shared ----------------------------------------------------------------------

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        header = metadata_value(context.invocation_metadata(), AUTHORIZATION)
        return await asyncio.to_thread(resolve, self.engine, self.state.admin_hash, header)

    def _may_read(self, principal: Principal) -> None:
        if self.settings.private and principal.anonymous:
            raise Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                "this farm is private: send a token with the read scope "
                "(metadata authorization: Bearer pft_...)",
            )

    async def _ingest(self, machine: Machine, document: RunDocument) -> RunOutcome:
        (outcome,) = await asyncio.to_thread(self.ingestor.ingest, machine, [document])
        if outcome.outcome == Outcome.INVALID:
            shown = "; ".join(
                f"{e.field.replace('body.runs.0', 'document', 1)}: {e.message}"
                for e in outcome.errors[:3]
            )
            raise Refused(INVALID, f"{outcome.message}: {shown}")
        return outcome

    # -- perffarm.v1.Runs --------------------------------------------------------------

    async def submit_run(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> pb.SubmitRunResponse:
        return await guarded(context, self._submit_run(raw, context))

    async def _submit_run(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> pb.SubmitRunResponse:
        request = decode(pb.SubmitRunRequest, raw)
        principal = await self._principal(context)
        named = metadata_value(context.invocation_metadata(), MACHINE_KEY)
        machine = await asyncio.to_thread(upload_machine, self.engine, principal, named)
        try:
            document = RunDocument.model_validate_json(request.document)
        except ValidationError as exc:
            errors = field_errors(exc, "document")
            shown = "; ".join(f"{e.field}: {e.message}" for e in errors[:3])
            more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
            raise Refused(INVALID, f"invalid run document: {shown}{more}") from None
        outcome = await self._ingest(machine, document)
        if outcome.outcome == Outcome.CONFLICT:
            raise Refused(grpc.StatusCode.ALREADY_EXISTS, outcome.message)
        message = outcome.message
        if not machine.approved:
            message = f"{message}; " + _UNAPPROVED.format(name=machine.name)
        return pb.SubmitRunResponse(
            id=str(document.id),
            outcome=pb.STORED if outcome.outcome == Outcome.STORED else pb.ALREADY_STORED,
            machine=machine.name,
            machine_approved=machine.approved,
            message=message,
        )

    async def list_user_results(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> pb.ResultsPage:
        async def work() -> pb.ResultsPage:
            request = decode(pb.ListUserResultsRequest, raw)
            principal = await self._principal(context)
            self._may_read(principal)
            user = request.user
            if not user:
                if principal.user is not None:
                    user = principal.user.name
                elif principal.machine is not None:
                    user = principal.machine.owner
                else:
                    raise Refused(INVALID, "user: name the user (or send a user's token)")
            return await asyncio.to_thread(self._results, principal, request, user)

        return await guarded(context, work())

    async def list_all_results(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> pb.ResultsPage:
        async def work() -> pb.ResultsPage:
            request = decode(pb.ListResultsRequest, raw)
            principal = await self._principal(context)
            self._may_read(principal)
            return await asyncio.to_thread(self._results, principal, request, None)

        return await guarded(context, work())

    def _results(self, principal: Principal, request: Any, owner: str | None) -> pb.ResultsPage:
        limit = request.limit or 100
        if not 1 <= limit <= MAX_PAGE:
            raise Refused(INVALID, f"limit: between 1 and {MAX_PAGE} (0 means 100)")
        given = request.filter
        flt = results.ResultFilter(
            owner=owner,
            machine=given.machine or None,
            project=given.project or None,
            benchmark=given.benchmark or None,
            metric=given.metric or None,
        )
        with self.engine.connect() as conn:
            items, next_cursor = results.list_results(
                conn,
                flt,
                admin=principal.admin,
                cursor=request.cursor or None,
                limit=limit,
                samples=request.samples,
                viewer=principal.viewer,
            )
        return pb.ResultsPage(
            results=[convert.result_message(row) for row in items],
            next_cursor=next_cursor or "",
        )

    # -- grpc.testing.ReportQpsScenarioService -------------------------------------------

    async def report_scenario(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> control_pb2.Void:
        return await guarded(context, self._report_scenario(raw, context))

    async def _report_scenario(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> control_pb2.Void:
        result = decode(control_pb2.ScenarioResult, raw)
        metadata = context.invocation_metadata()
        principal = await self._principal(context)
        machine = await asyncio.to_thread(
            upload_machine,
            self.engine,
            principal,
            metadata_value(metadata, MACHINE_KEY),
            anonymous_machine=self.settings.grpc_qps_machine,
        )
        reporter = {
            "transport": "grpc",
            "peer": context.peer(),
            "user_agent": metadata_value(metadata, "user-agent"),
            "credential": principal.kind,
            "user": principal.user.name if principal.user else machine.owner,
        }
        try:
            document = await asyncio.to_thread(
                convert.scenario_run,
                result,
                machine_id=machine.id,
                machine=machine.name,
                project=metadata_value(metadata, PROJECT_KEY),
                tag=metadata_value(metadata, TAG_KEY),
                branch=metadata_value(metadata, BRANCH_KEY),
                commit=metadata_value(metadata, COMMIT_KEY),
                reporter=reporter,
            )
        except convert.Malformed as exc:
            raise Refused(INVALID, f"invalid grpc.testing.ScenarioResult: {exc}") from None
        # The run id is derived from the message and the machine: a conflict on it is the
        # same result sent again (with another arrival time), which is stored already.
        await self._ingest(machine, document)
        return control_pb2.Void()

    # -- perffarm.v1.LoadTests -----------------------------------------------------------

    async def stream_datapoints(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.BatchAck]:
        tests = self.state.loadtests
        metadata = context.invocation_metadata()
        given = metadata_value(metadata, LOADTEST_TOKEN_KEY)
        principal = await guarded(context, self._principal(context))
        admitted: set[str] = set()

        async def admit(test_id: str) -> None:
            # Asked once per test of the stream: a batch may name any test, and each test
            # has its own writers (its creator, tokens made for it).
            if test_id not in admitted:
                await asyncio.to_thread(loadtest_writer, principal, tests, test_id, given)
                admitted.add(test_id)

        if principal.anonymous and not given:
            await guarded(context, asyncio.to_thread(loadtest_writer, principal, tests, "", None))
        # Up to STREAM_IN_FLIGHT batches are parsed and stored at once (parsing runs in a
        # thread, the commit in the database), so one stream keeps both cores busy; the
        # acknowledgements still go out in the order the batches came. A failure ends the
        # stream: batches after it may be stored already, and a resend of them is a
        # duplicate, never counted twice.
        in_flight: collections.deque[asyncio.Task[pb.BatchAck]] = collections.deque()
        try:
            async for raw in requests:
                in_flight.append(asyncio.ensure_future(self._store_batch(raw, admit)))
                while in_flight and (len(in_flight) >= STREAM_IN_FLIGHT or in_flight[0].done()):
                    yield await guarded(context, in_flight.popleft())
            while in_flight:
                yield await guarded(context, in_flight.popleft())
        finally:
            for task in in_flight:
                if task.done():
                    if not task.cancelled():
                        task.exception()  # retrieved: the stream has ended on an earlier one
                else:
                    task.cancel()

    async def _store_batch(
        self, raw: bytes, admit: Callable[[str], Awaitable[None]]
    ) -> pb.BatchAck:
        batch = decode(pb.DatapointBatch, raw)
        if not batch.test_id:
            raise Refused(INVALID, "test_id: empty: name the load test")
        await admit(batch.test_id)
        parsed = await asyncio.to_thread(_parse, batch)
        ack = await ingest_batch(self.app, batch.test_id, parsed)
        return pb.BatchAck(
            test_id=batch.test_id,
            worker=batch.worker,
            incarnation=batch.incarnation,
            sequence=batch.sequence,
            accepted=ack.accepted,
            duplicate=ack.duplicate,
        )


# -- datapoint batches -------------------------------------------------------------------

_POINT_FIELD = re.compile(r"^datapoints\.(\d+)(?:\.(\w+))?(.*)$")
_FIELD_NAMES = {"peerId": "peer_id", "metrics": "metrics_json", "timestamp": "timestamp"}


def batch_field(field: str) -> str:
    """A field of the HTTP batch (``body.datapoints.3.metrics``) as the message names it."""
    field = field.removeprefix("body").lstrip(".")
    match = _POINT_FIELD.match(field)
    if match:
        name = _FIELD_NAMES.get(match[2] or "", match[2])
        return f"datapoints[{match[1]}]" + (f".{name}" if name else "") + match[3]
    for part in ("health", "latency"):
        if field.startswith(part):
            return f"{part}_json" + field[len(part) :]
    return field or "batch"


def _loads(text: str) -> Any:
    return orjson.loads(text)


def _batch_json(batch: pb.DatapointBatch) -> bytes:
    """The batch as the HTTP endpoint's JSON body; metrics are copied in as sent."""
    body: dict[str, Any] = {
        "worker": batch.worker,
        "incarnation": batch.incarnation,
        "sequence": batch.sequence,
        "final": batch.final,
    }
    for key, text in (("health", batch.health_json), ("latency", batch.latency_json)):
        if text:
            try:
                body[key] = _loads(text)
            except ValueError:
                raise Refused(INVALID, f"invalid batch: {key}_json: not valid JSON") from None
    points = []
    for point in batch.datapoints:
        item: dict[str, Any] = {
            "peerId": point.peer_id,
            "metrics": orjson.Fragment(point.metrics_json or "null"),
        }
        if point.HasField("timestamp"):
            item["timestamp"] = point.timestamp
        points.append(item)
    body["datapoints"] = points
    return orjson.dumps(body)


def _point_dict(index: int, point: pb.Datapoint) -> dict[str, Any]:
    try:
        metrics = _loads(point.metrics_json or "null")
    except ValueError as exc:
        # orjson's own words for what it refuses: too deep, a number no double holds.
        reason = (
            str(exc).split(":")[0]
            if "recursion" in str(exc).lower() or ("infinity" in str(exc))
            else "not valid JSON"
        )
        raise Refused(
            INVALID, f"invalid batch: datapoints[{index}].metrics_json: {reason}"
        ) from None
    item: dict[str, Any] = {"peerId": point.peer_id, "metrics": metrics}
    if point.HasField("timestamp"):
        item["timestamp"] = point.timestamp
    return item


def _parse(batch: pb.DatapointBatch) -> Any:
    """The batch checked by ``loadtests.parse_batch``, exactly as over HTTP."""
    raw = _batch_json(batch)
    try:
        parsed = parse_batch(raw)
    except BatchError as exc:
        if exc.field == "body":
            # A metrics_json that is not JSON spoils the whole text: find which one.
            for index, point in enumerate(batch.datapoints):
                _point_dict(index, point)
        raise Refused(INVALID, f"invalid batch: {batch_field(exc.field)}: {exc.problem}") from None
    envelope = parsed.envelope
    # A metrics_json is copied into the text as sent: one that closes its object early
    # and adds datapoints or envelope fields shows up here.
    if (
        parsed.count != len(batch.datapoints)
        or envelope.worker != batch.worker
        or envelope.incarnation != batch.incarnation
        or envelope.sequence != batch.sequence
    ):
        raise Refused(INVALID, "invalid batch: datapoints: a metrics_json is not one JSON object")
    return parsed
