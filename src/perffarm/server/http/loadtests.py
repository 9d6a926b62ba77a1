"""``/api/v1/loadtests``: load tests with thresholds and verdicts, worker batches, the live
datapoint cursor and summaries. Writes need credentials or the load-test token."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from perffarm.loadtest.thresholds import ThresholdError, parse_all
from perffarm.model.loadtest import (
    BatchAck,
    DatapointBatch,
    LoadTestCreate,
    LoadTestInfo,
    LoadTestToken,
)
from perffarm.server import permissions
from perffarm.server.core.errors import Conflict, Invalid
from perffarm.server.core.principal import Principal
from perffarm.server.http.deps import principal
from perffarm.server.http.loadtests_compat import loadtest_token_given
from perffarm.server.http.routetable import rule
from perffarm.server.services.loadtest_batches import now_ms, parse_batch
from perffarm.server.services.loadtests import LoadTests, ingest_batch

router = APIRouter(prefix="/loadtests", tags=["load tests"])


def creator(request: Request, who: Principal = Depends(principal)) -> Principal:
    """Who may create a load test (checked before the body is read)."""
    permissions.may_create_loadtest(who, token_given=loadtest_token_given(request))
    return who


def writer(test_id: str, request: Request, who: Principal = Depends(principal)) -> Principal:
    """Who may write to the load test in the path (checked before the body is read)."""
    tests = _tests(request)
    permissions.may_write_loadtest(
        who,
        test_id,
        token_given=loadtest_token_given(request, test_id),
        creator_user_id=tests.creator(test_id),
    )
    tests.found(test_id)
    return who


def _tests(request: Request) -> LoadTests:
    tests: LoadTests = request.app.state.loadtests
    return tests


@router.get("", response_model=list[LoadTestInfo], openapi_extra=rule(permissions.ANYONE))
def list_tests(request: Request, limit: int = Query(100, ge=1, le=1000)) -> list[LoadTestInfo]:
    """Load tests, newest first."""
    return _tests(request).list(limit)


@router.post(
    "",
    response_model=LoadTestInfo,
    status_code=201,
    openapi_extra=rule(permissions.LOADTEST_CREATOR),
)
def create_test(
    body: LoadTestCreate, request: Request, who: Principal = Depends(creator)
) -> LoadTestInfo:
    """Create a test (with thresholds; ``abortOnFail`` ones are checked during the run);
    ``started: true`` starts it at once."""
    definition = body.model_dump(exclude={"id", "started"}, exclude_none=True)
    try:
        parse_all(definition.get("thresholds") or {})
    except ThresholdError as exc:
        raise Invalid(str(exc)) from None
    tests = _tests(request)
    try:
        row = tests.create(body.id, definition, body.started, creator=who)
    except FileExistsError:
        raise Conflict(f"a load test {body.id!r} exists already") from None
    return tests.info(tests.found(row["id"]))


@router.get("/{test_id}", response_model=LoadTestInfo, openapi_extra=rule(permissions.ANYONE))
def get_info(test_id: str, request: Request) -> LoadTestInfo:
    tests = _tests(request)
    return tests.info(tests.found(test_id))


@router.post(
    "/{test_id}/start",
    response_model=LoadTestInfo,
    dependencies=[Depends(writer)],
    openapi_extra=rule(permissions.LOADTEST_WRITER),
)
def start(test_id: str, request: Request) -> LoadTestInfo:
    tests = _tests(request)
    if tests.found(test_id).finished is not None:
        raise Conflict("the test is finished already (test-already-finished)")
    tests.start(test_id)
    return tests.info(tests.found(test_id))


@router.post(
    "/{test_id}/finish",
    dependencies=[Depends(writer)],
    openapi_extra=rule(permissions.LOADTEST_WRITER),
)
def finish(test_id: str, request: Request) -> dict:
    """Finish the test: the summary and verdict are computed and kept."""
    tests = _tests(request)
    row = tests.found(test_id)
    if row.started is None:
        raise Conflict("the test was never started (test-not-started)")
    if row.finished is not None:
        raise Conflict("the test is finished already (test-already-finished)")
    _, summary = tests.finish(test_id)
    return {"test": tests.info(tests.found(test_id)).model_dump(), "summary": summary}


def _batch_schema() -> dict:
    """DatapointBatch's JSON Schema with its definitions inlined, for the OpenAPI document."""
    schema = DatapointBatch.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    inlined: dict = inline(schema)
    return inlined


@router.post(
    "/{test_id}/tokens",
    status_code=201,
    response_model=LoadTestToken,
    openapi_extra=rule(permissions.LOADTEST_WRITER),
)
def mint_token(test_id: str, request: Request, who: Principal = Depends(writer)) -> LoadTestToken:
    """A token for the workers of this test, shown this once: it may write to this test
    only (header X-Perffarm-Loadtest-Token, or ``?token=`` on the original's routes)."""
    return LoadTestToken(
        test_id=test_id, token=_tests(request).mint_token(test_id, by=who.describe())
    )


@router.post(
    "/{test_id}/datapoints",
    response_model=BatchAck,
    dependencies=[Depends(writer)],
    openapi_extra=rule(
        permissions.LOADTEST_WRITER,
        requestBody={
            "required": True,
            "content": {"application/json": {"schema": _batch_schema()}},
        },
    ),
)
async def add_datapoints(test_id: str, request: Request) -> BatchAck:
    """A worker's batch; a batch already stored (same worker, incarnation, sequence) counts once."""
    batch = await asyncio.to_thread(parse_batch, await request.body())
    return await ingest_batch(request.app, test_id, batch)


@router.get("/{test_id}/datapoints", openapi_extra=rule(permissions.ANYONE))
def read_datapoints(
    test_id: str,
    request: Request,
    after: int = Query(
        0, ge=0, le=2**62, description="Only datapoints after this cursor (`next_after`)."
    ),
    limit: int = Query(1000, ge=1, le=10000),
) -> dict:
    tests = _tests(request)
    tests.found(test_id)
    points = tests.datapoints_after(test_id, after, limit)
    return {"datapoints": points, "next_after": points[-1]["id"] if points else after}


@router.get("/{test_id}/summary", openapi_extra=rule(permissions.ANYONE))
def get_summary(test_id: str, request: Request) -> dict:
    """The kept summary of a finished test; a running test's summary so far."""
    tests = _tests(request)
    row = tests.found(test_id)
    if row.summary:
        kept: dict = json.loads(row.summary)
        return kept
    return tests.summary(test_id, end_ms=now_ms(), definition=json.loads(row.definition))
