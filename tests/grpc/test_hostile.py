"""Property-based: hostile messages at every gRPC method, on a real server, on SQLite and
PostgreSQL.

The methods are read from the descriptors of the services the server registers, so a new
method without a strategy here fails ``test_every_method_has_a_strategy``. Each method gets
well-formed messages with hostile field values (every field of the message, read from its
descriptor: hostile text, NaN, infinities and the extremes of each integer type, unknown
enum values) plus its own payloads (run documents, metrics), and bytes that are no message
at all. The call ends OK or with a status that names the caller's mistake, never INTERNAL
or UNKNOWN, its detail one line; what it stored reads back and renders over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import Parse
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from perffarm.model import RunDocument
from perffarm.proto.grpc_testing import control_pb2, report_qps_scenario_service_pb2  # noqa: F401
from perffarm.proto.v1 import perffarm_pb2 as pb
from perffarm.server.grpc.server import SERVICES
from tests.grpc.support import GrpcServerProcess, bearer
from tests.hostile import fuzz_settings, hostile_text, metrics_text, visible_markup
from tests.hostile_documents import check_run, run_bodies
from tests.server.support import ADMIN
from tests.web.conftest import DATABASES, scratch_database

SCENARIO = (
    Path(__file__).parents[1] / "data" / "adapters" / "grpc-scenario" / "scenario_result.json"
)
MACHINE = "grpc-fuzz"
TEST_ID = "grpc-hostile"
#: What a hostile request may end with: the caller's mistake, named.
REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def _method_names() -> set[str]:
    pool = descriptor_pool.Default()
    return {
        f"/{service}/{method.name}"
        for service in SERVICES
        for method in pool.FindServiceByName(service).methods
    }


# -- messages from descriptors ----------------------------------------------------------------

_INTS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
JSON_TEXTS = ["{}", "[]", "null", '{"a": NaN}', '{"a": 1e999}', "[" * 3000, "{", '"x"']


def _scalar(field: FieldDescriptor) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return hostile_text(max_size=300) | st.sampled_from(JSON_TEXTS)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64) | st.sampled_from(JSON_TEXTS).map(str.encode)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats() | st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308])
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.integers(-3, 40)  # proto3 enums are open: unknown numbers travel too
    low, high = _INTS[kind]
    return st.integers(low, high) | st.sampled_from([low, high, 0, -1 if low else 1])


@st.composite
def mutated(draw: st.DrawFn, template: Message, depth: int = 0) -> Message:
    """``template`` with some fields set to hostile values, some cleared, some kept."""
    message = type(template)()
    message.CopyFrom(template)
    for field in message.DESCRIPTOR.fields:
        action = draw(st.sampled_from(["keep", "keep", "set", "clear"]))
        if action == "keep":
            continue
        if action == "clear":
            message.ClearField(field.name)
            continue
        _set(draw, message, field, depth)
    return message


def _set(draw: st.DrawFn, message: Message, field: FieldDescriptor, depth: int) -> None:
    is_message = field.type == FieldDescriptor.TYPE_MESSAGE
    if is_message and field.message_type.GetOptions().map_entry:
        return
    if field.is_repeated:
        container = getattr(message, field.name)
        if is_message:
            existing = list(container)
            del container[:]
            for _ in range(draw(st.integers(0, 3))):
                base = draw(st.sampled_from(existing)) if existing else _empty(field.message_type)
                if depth < 4:
                    base = draw(mutated(base, depth + 1))
                container.add().CopyFrom(base)
        else:
            container[:] = draw(st.lists(_scalar(field), max_size=4))
        return
    if is_message:
        if depth < 4:
            getattr(message, field.name).CopyFrom(
                draw(mutated(getattr(message, field.name), depth + 1))
            )
        return
    setattr(message, field.name, draw(_scalar(field)))


def _empty(descriptor: Descriptor) -> Message:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)()


@st.composite
def corrupted(draw: st.DrawFn, message: Message) -> bytes:
    """The message's bytes truncated, overwritten or with bytes inserted."""
    data = message.SerializeToString()
    at = draw(st.integers(0, len(data)))
    kind = draw(st.sampled_from(["truncate", "replace", "insert"]))
    if kind == "truncate":
        return data[:at]
    noise = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff\xfe", b"\x80" * 11]))
    if kind == "replace":
        return data[:at] + noise + data[at + len(noise) :]
    return data[:at] + noise + data[at:]


def requests(template: Message, own: Any | None = None) -> Any:
    """A method's requests as bytes: its own hostile payloads, mutated messages, corruptions."""
    messages = mutated(template)
    if own is not None:
        messages = own | messages
    return st.one_of(
        messages.map(lambda m: m.SerializeToString()),
        messages.flatmap(corrupted),
        st.binary(max_size=200),
    )


# -- each method's strategy -------------------------------------------------------------------


@st.composite
def submit_run_requests(draw: st.DrawFn) -> pb.SubmitRunRequest:
    _, text = draw(run_bodies(MACHINE))
    return pb.SubmitRunRequest(document=text.encode())


@st.composite
def datapoint_batches(draw: st.DrawFn) -> pb.DatapointBatch:
    batch = pb.DatapointBatch(
        test_id=draw(st.just(TEST_ID) | hostile_text(max_size=40)),
        worker=draw(hostile_text(max_size=60)),
        incarnation=draw(hostile_text(max_size=70)),
        sequence=draw(st.integers(0, 2**64 - 1)),
        final=draw(st.booleans()),
    )
    for _ in range(draw(st.integers(0, 3))):
        point = batch.datapoints.add(
            peer_id=draw(hostile_text(max_size=210)), metrics_json=draw(metrics_text())
        )
        if draw(st.booleans()):
            point.timestamp = draw(st.integers(-(2**63), 2**63 - 1))
    return batch


def _scenario() -> control_pb2.ScenarioResult:
    return Parse(SCENARIO.read_text(), control_pb2.ScenarioResult())


ascii_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=260)


@st.composite
def scenario_metadata(draw: st.DrawFn) -> list[tuple[str, str]]:
    keys = ["x-perffarm-project", "x-perffarm-tag", "x-perffarm-branch", "x-perffarm-commit"]
    return [(key, draw(ascii_values)) for key in keys if draw(st.booleans())]


class Method:
    """How to call one method: its request bytes, its metadata, unary or a stream."""

    def __init__(
        self,
        payloads: Any,
        metadata: Callable[[GrpcFarm], Any],
        stream: bool = False,
    ) -> None:
        self.payloads = payloads
        self.metadata = metadata
        self.stream = stream


STRATEGIES: dict[str, Method] = {
    "/perffarm.v1.Runs/SubmitRun": Method(
        requests(pb.SubmitRunRequest(), submit_run_requests()),
        lambda farm: st.just(bearer(farm.machine_token)),
    ),
    "/perffarm.v1.Runs/ListUserResults": Method(
        requests(pb.ListUserResultsRequest(user="alice", limit=5)),
        lambda farm: st.sampled_from([[], bearer(farm.machine_token), bearer(ADMIN)]),
    ),
    "/perffarm.v1.Runs/ListAllResults": Method(
        requests(pb.ListResultsRequest(limit=5, samples=True)),
        lambda farm: st.sampled_from([[], bearer(ADMIN)]),
    ),
    "/perffarm.v1.LoadTests/StreamDatapoints": Method(
        st.lists(requests(pb.DatapointBatch(test_id=TEST_ID), datapoint_batches()), max_size=3),
        lambda farm: st.just(bearer(ADMIN)),
        stream=True,
    ),
    "/grpc.testing.ReportQpsScenarioService/ReportScenario": Method(
        requests(_scenario()),
        lambda farm: scenario_metadata().map(lambda m: [*bearer(farm.machine_token), *m]),
    ),
}


# -- the server -------------------------------------------------------------------------------


class GrpcFarm:
    def __init__(self, server: GrpcServerProcess) -> None:
        self.server = server
        self.machine_token = server.register(MACHINE, owner="<script>alert(1)</script>")
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
        )
        answer = self.http.post("/api/v1/loadtests", json={"id": TEST_ID, "started": True})
        assert answer.status_code == 201, answer.text
        self.checked: set[str] = set()

    def run_ids(self) -> list[str]:
        answer = self.http.get("/api/v1/runs", params={"limit": 1000})
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]


@pytest.fixture(scope="module", params=DATABASES)
def farm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GrpcFarm]:
    folder = tmp_path_factory.mktemp("grpc-hostile")
    with (
        scratch_database(request.param, folder) as database,
        GrpcServerProcess(database, folder) as server,
    ):
        farm = GrpcFarm(server)
        yield farm
        farm.http.close()


def test_every_method_has_a_strategy() -> None:
    assert _method_names() == set(STRATEGIES), "give the new method a strategy in STRATEGIES"


def _ended_well(error: grpc.RpcError | None) -> None:
    if error is None:
        return
    assert error.code() in REFUSALS, (error.code(), error.details())
    details = error.details() or ""
    assert details and "\n" not in details, details


def _call(
    channel: grpc.Channel, name: str, method: Method, payload: Any, metadata: Any
) -> grpc.RpcError | None:
    try:
        if method.stream:
            call = channel.stream_stream(name)
            for _ in call(iter(payload), metadata=metadata, timeout=60):
                pass
        else:
            channel.unary_unary(name)(payload, metadata=metadata, timeout=60)
    except grpc.RpcError as error:
        return error
    return None


def _check_stored(farm: GrpcFarm) -> None:
    """Every run stored since the last look reads back and renders; the load test's views
    answer."""
    for run_id in farm.run_ids():
        if run_id in farm.checked:
            continue
        text = farm.http.get(f"/api/v1/runs/{run_id}").text
        check_run(farm.http, run_id, RunDocument.from_json(text))
        farm.checked.add(run_id)
    for path in (
        f"/api/v1/loadtests/{TEST_ID}/summary",
        f"/api/v1/loadtests/{TEST_ID}/datapoints",
        "/metrics",
        f"/loadtests/{TEST_ID}",
    ):
        answer = farm.http.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        if answer.headers["content-type"].startswith("text/html"):
            assert visible_markup(answer.text) == [], path


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_hostile_messages_end_well_and_what_is_stored_reads_back(farm: GrpcFarm, name: str) -> None:
    method = STRATEGIES[name]

    @fuzz_settings()
    @given(payload=method.payloads, metadata=method.metadata(farm))
    def call(payload: Any, metadata: Any) -> None:
        with farm.server.channel() as channel:
            _ended_well(_call(channel, name, method, payload, metadata))
        _check_stored(farm)

    call()
    if method.stream:
        finished = farm.http.post(f"/api/v1/loadtests/{TEST_ID}/finish")
        assert finished.status_code in (200, 409), finished.text
        assert farm.http.get(f"/test/{TEST_ID}", params={"dataPoints": "true"}).status_code == 200
