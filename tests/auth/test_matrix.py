"""The permission matrix: every HTTP route (API, pages, forms, sign-in, the original load-test
harness's routes) and every gRPC method, called by every kind of caller, answers as the rule
it declares says; a refused write changes nothing.

The routes come from the app's route table and the gRPC methods from the service
descriptors; the rule of each is the one it declares (``x-perffarm-rule``,
``server/grpc/methods.py``), so a new route or method without a rule fails here. What each
rule answers each caller is written once, in ``tests/auth/matrix.py``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from perffarm.server import permissions
from perffarm.server.http import routetable
from tests.auth.matrix import (
    ALLOWED,
    ANSWERS,
    KINDS,
    NOT_OVER_GRPC,
    REDIRECT,
    Farm,
    expected,
    make_farm,
    outcome,
    request,
    send,
    target,
)
from tests.server.support import ADMIN, make_run
from tests.web.conftest import scratch_database

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
SAFE = {"GET", "HEAD", "OPTIONS"}
#: Where a caller who must sign in first is sent.
SIGN_IN_FIRST = "/signin?next="
#: The kinds a locked farm (private, admin registration, token-only compat routes) is
#: called by: anonymous ones, and enough of the others to show the locks are the only change.
LOCKED_KINDS = ("none", "loadtest_token", "wrong_secret", "owner", "another_user", "admin")


@pytest.fixture(scope="module", params=DATABASES)
def farm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    tmp = tmp_path_factory.mktemp("matrix")
    with scratch_database(request.param, tmp) as database:
        yield from make_farm(database, tmp)


def _routes(farm: Farm) -> list[routetable.Declared]:
    found = routetable.declared(farm.app.routes)
    assert len(found) > 100, len(found)
    return found


def test_every_route_and_rule_is_declared(farm: Farm) -> None:
    routes = _routes(farm)
    unruled = [f"{r.method} {r.path}" for r in routes if r.rule is None]
    assert not unruled, f"routes without a rule (openapi_extra=rule(...)): {unruled}"
    # Each rule of the server has its answers here, and no answers stand for no rule.
    assert set(ANSWERS) == set(permissions.RULES)
    for answers in ANSWERS.values():
        assert set(answers) == set(KINDS)
    # The API's own document says who may call each operation.
    document = farm.client.get("/api/v1/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get(routetable.RULE_KEY) in permissions.RULES, (method, path)


def _clean(answer: Any, secrets: list[str]) -> str | None:
    """What an answer shows that it must not: a credential, a traceback, somebody's email."""
    text = answer.text
    if "Traceback" in text or 'File "' in text:
        return "a traceback"
    if answer.request.url.path == "/api/v1/me":
        # The caller's own profile is the one place their own email is shown.
        text = re.sub(r'"email":"[^"]*"', "", text, count=1)
    if "@example.org" in text:
        return "an email"
    for secret in secrets:
        if secret and secret in text:
            return "a credential"
    return None


def _check(
    farm: Farm, kind: str, rule: str, method: str, path: str, answer: Any, *, locked: bool
) -> str | None:
    """What is wrong with ``answer``, or None."""
    want = expected(rule, kind, method, path, locked=locked)
    status = answer.status_code
    shown = f"{kind:>18} {method} {path} ({rule}): {status}, expected {want}"
    if status >= 500:
        return f"{shown}: {answer.text[:200]}"
    leak = _clean(answer, [s for k, s in farm.secrets.items() if k != "malformed"])
    if leak:
        return f"{shown}: the answer shows {leak}"
    got = outcome(status)
    if want == ALLOWED:
        refused = got in (401, 403) or (
            got == REDIRECT and answer.headers.get("location", "").startswith(SIGN_IN_FIRST)
        )
        if refused:
            return f"{shown}: refused ({answer.text[:200]})"
        if method not in SAFE and status >= 400:
            # A write allowed is called to do its work, on a target it may use up.
            return f"{shown}: the allowed write failed ({answer.text[:200]})"
        return None
    if got != want:
        return f"{shown}: {answer.text[:200]}"
    if want == REDIRECT and not answer.headers.get("location", "").startswith(SIGN_IN_FIRST):
        return f"{shown}: redirected to {answer.headers.get('location')}"
    if status in (401, 403) and path.startswith("/api/") and "detail" not in answer.json():
        return f"{shown}: no detail in {answer.text[:200]}"
    return None


def _matrix(farm: Farm, kinds: tuple[str, ...], *, locked: bool = False) -> list[str]:
    """Every route called by every kind of caller: what went wrong."""
    wrong: list[str] = []
    # The reads first, on the farm as seeded; then the writes, which add to it.
    routes = sorted(_routes(farm), key=lambda r: r.method not in SAFE)
    for route in routes:
        assert route.rule is not None
        rule, method, path = route.rule.name, route.method, route.path
        answers = {k: expected(rule, k, method, path, locked=locked) for k in kinds}
        refused = [k for k in kinds if answers[k] != ALLOWED]
        allowed = [k for k in kinds if answers[k] == ALLOWED]
        if method in SAFE:
            # A read changes nothing whoever asks: one target for everybody.
            aim = target(farm, method, path)
            for kind in kinds:
                answer = send(farm, request(farm, kind, method, path, aim))
                wrong.append(_check(farm, kind, rule, method, path, answer, locked=locked))
            continue
        # The refused callers, one after the other on one target: nothing may change.
        if refused:
            aim = target(farm, method, path)
            made = {k: request(farm, k, method, path, aim) for k in refused}
            before = farm.snapshot()
            for kind in refused:
                answer = send(farm, made[kind])
                wrong.append(_check(farm, kind, rule, method, path, answer, locked=locked))
            if farm.snapshot() != before:
                wrong.append(f"{method} {path}: refused calls changed the database ({refused})")
        # The allowed ones each on a target of its own: a write may use it up.
        for kind in allowed:
            aim = target(farm, method, path)
            answer = send(farm, request(farm, kind, method, path, aim))
            wrong.append(_check(farm, kind, rule, method, path, answer, locked=locked))
    return [w for w in wrong if w]


def test_every_route_answers_every_caller_as_its_rule_says(farm: Farm) -> None:
    wrong = _matrix(farm, KINDS)
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong)


@pytest.fixture(scope="module", params=DATABASES)
def locked_farm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    tmp = tmp_path_factory.mktemp("matrix-locked")
    with scratch_database(request.param, tmp) as database:
        yield from make_farm(
            database,
            tmp,
            grpc=False,
            private=True,
            registration="admin",
            compat_auth="token",
        )


def test_a_locked_farm_answers_as_its_rules_say(locked_farm: Farm) -> None:
    wrong = _matrix(locked_farm, LOCKED_KINDS, locked=True)
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong)


def test_a_revoked_machine_secret_is_refused_until_a_new_one_is_made(farm: Farm) -> None:
    machine = farm.machine(farm.fresh("alice-r"))
    name = machine.split(":")[0]
    auth = {"Authorization": f"Bearer {machine}"}
    assert farm.client.get("/api/v1/machines/me", headers=auth).status_code == 200
    owner = {"Authorization": f"Bearer {farm.secrets['owner']}"}
    assert farm.client.post(f"/api/v1/machines/{name}/revoke", headers=owner).status_code == 200
    refused = farm.client.get("/api/v1/machines/me", headers=auth)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    fresh = farm.client.post(f"/api/v1/machines/{name}/secret", headers=admin)
    assert fresh.status_code == 200
    again = {"Authorization": f"Bearer {name}:{fresh.json()['secret']}"}
    assert farm.client.get("/api/v1/machines/me", headers=again).status_code == 200


# -- gRPC -------------------------------------------------------------------------------------

GRPC_CODES = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}


def _described_methods() -> dict[str, Any]:
    """Every method of the services the server registers, from their descriptors."""
    from grpc_health.v1 import health_pb2
    from grpc_reflection.v1alpha import reflection_pb2

    from perffarm.proto.grpc_testing import report_qps_scenario_service_pb2
    from perffarm.proto.v1 import perffarm_pb2

    found = {}
    for module in (perffarm_pb2, report_qps_scenario_service_pb2, health_pb2, reflection_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found[f"/{service.full_name}/{method.name}"] = method
    return found


def _grpc_requests(farm: Farm, path: str) -> tuple[list[bytes], str | None]:
    """The request messages a call of ``path`` sends, and the load-test token it may use."""
    from grpc_health.v1 import health_pb2
    from grpc_reflection.v1alpha import reflection_pb2

    from perffarm.proto.v1 import perffarm_pb2 as pb
    from tests.grpc.test_qps_report import scenario_result

    method = path.rsplit("/", 1)[1]
    if method == "SubmitRun":
        run = make_run(machine="alice-01", project="demo", commit=uuid.uuid4().hex + "0" * 8)
        return [pb.SubmitRunRequest(document=run.to_json().encode()).SerializeToString()], None
    if method == "ListUserResults":
        return [pb.ListUserResultsRequest(user="alice").SerializeToString()], None
    if method == "ListAllResults":
        return [pb.ListResultsRequest().SerializeToString()], None
    if method == "ReportScenario":
        return [scenario_result().SerializeToString()], None
    if method == "StreamDatapoints":
        test_id, token = farm.loadtest()
        point = pb.Datapoint(peer_id="peer-1", metrics_json='{"latency": 1.5}')
        batch = pb.DatapointBatch(
            test_id=test_id, worker="w", incarnation="i", sequence=0, datapoints=[point]
        )
        return [batch.SerializeToString()], token
    if method in ("Check", "Watch"):
        return [health_pb2.HealthCheckRequest(service="").SerializeToString()], None
    if method == "List":
        return [health_pb2.HealthListRequest().SerializeToString()], None
    if method == "ServerReflectionInfo":
        asked = reflection_pb2.ServerReflectionRequest(list_services="")
        return [asked.SerializeToString()], None
    raise AssertionError(f"no request for gRPC method {path}: add one")


def _grpc_call(
    farm: Farm, path: str, described: Any, kind: str, prepared: tuple[list[bytes], str | None]
) -> tuple[str, str]:
    """``kind`` calls the gRPC method ``path`` with the ``prepared`` requests: (code,
    details)."""
    import grpc

    messages, token = prepared
    metadata = [("x-perffarm-machine", "alice-01")]
    if kind == "loadtest_token":
        metadata.append(("x-perffarm-loadtest-token", token or farm.ids["shared_test_token"]))
    elif kind != "none":
        metadata.append(("authorization", f"Bearer {farm.secrets[kind]}"))
    assert farm.grpc_target is not None
    with grpc.insecure_channel(farm.grpc_target) as channel:
        try:
            if described.client_streaming:
                call = channel.stream_stream(path)(iter(messages), metadata=metadata, timeout=30)
                next(iter(call))
                call.cancel()
            elif described.server_streaming:
                call = channel.unary_stream(path)(messages[0], metadata=metadata, timeout=30)
                next(iter(call))
                call.cancel()
            else:
                channel.unary_unary(path)(messages[0], metadata=metadata, timeout=30)
        except grpc.RpcError as error:
            return error.code().name, error.details() or ""
    return "OK", ""


def test_every_grpc_method_answers_every_caller_as_its_rule_says(farm: Farm) -> None:
    from perffarm.server.grpc.methods import METHODS

    described = _described_methods()
    assert set(described) == set(METHODS), "a gRPC method without a rule, or a rule of none"
    kinds = [k for k in KINDS if k not in NOT_OVER_GRPC]
    wrong = []
    for path, rule in METHODS.items():
        answers = {k: expected(rule.name, k, "CALL", path, grpc=True) for k in kinds}
        refused = [k for k in kinds if answers[k] != ALLOWED]
        prepared = {k: _grpc_requests(farm, path) for k in refused}
        before = farm.snapshot()
        for kind in refused:
            code, details = _grpc_call(farm, path, described[path], kind, prepared[kind])
            shown = f"{kind:>18} {path} ({rule.name}): {code} {details!r}"
            if code != GRPC_CODES[int(answers[kind])]:
                wrong.append(f"{shown}, expected {answers[kind]}")
            elif not details:
                wrong.append(f"{shown}: refused without saying why")
        if farm.snapshot() != before:
            wrong.append(f"{path}: refused calls changed the database ({refused})")
        for kind in [k for k in kinds if answers[k] == ALLOWED]:
            prepared_here = _grpc_requests(farm, path)
            code, details = _grpc_call(farm, path, described[path], kind, prepared_here)
            if code in ("UNAUTHENTICATED", "PERMISSION_DENIED", "INTERNAL", "UNKNOWN"):
                wrong.append(f"{kind:>18} {path} ({rule.name}): {code} {details!r}")
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong)
