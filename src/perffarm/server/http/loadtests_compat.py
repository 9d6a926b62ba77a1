"""The original load-test harness's HTTP API, answered exactly as the original did, errors
included (``{"status": "test-not-found"}``), with open CORS headers: its existing workers,
scripts and dashboards keep working. Open by default; ``PERFFARM_LOADTEST_COMPAT_AUTH=token``
requires the load-test token.

Paths: ``POST /test/{id}``, ``POST /test``, ``PUT /test/{id}/start``, ``PUT /test/{id}/finish``,
``GET /test/{id}?dataPoints=true``, ``PUT /test/{id}/peer/{peerId}/metrics|results``,
``PUT /test/{id}/topology``, ``GET /status``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from perffarm.model.loadtest import TEST_ID_PATTERN
from perffarm.server import permissions
from perffarm.server.http.routetable import rule
from perffarm.server.services.loadtest_batches import nested_too_deeply
from perffarm.server.services.loadtests import LoadTests, TestState
from perffarm.server.settings import LOADTEST_TOKEN_HEADER as TOKEN_HEADER

NOT_FOUND = {"status": "test-not-found"}
INVALID_ID = {"status": "invalid-test-id", "allowed": TEST_ID_PATTERN}
NOT_STARTED = {"status": "test-not-started"}
ALREADY_FINISHED = {"status": "test-already-finished"}
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET,HEAD,PUT,PATCH,POST,DELETE",
    "Access-Control-Allow-Headers": "*",
}
_SAFE_ID = re.compile(TEST_ID_PATTERN)


def _loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def _dumpb(value: Any) -> bytes:
    return orjson.dumps(value)


def given_loadtest_token(request: Request) -> str | None:
    """The load-test token sent with the request (header, or ``?token=`` as the original's
    clients send it)."""
    return request.headers.get(TOKEN_HEADER) or request.query_params.get("token")


def loadtest_token_given(request: Request, test_id: str | None = None) -> bool:
    """The server's load-test token, or one made for ``test_id``, came with the request."""
    tests: LoadTests = request.app.state.loadtests
    return tests.token_fits(test_id, given_loadtest_token(request))


async def compat_writer(request: Request) -> None:
    """Open like the original, or a load-test token (the server's, or one made for the
    test in the path). In the open mode no database work is done per request (and the
    dependency is async: a plain function would cost a trip through the thread pool)."""
    tests: LoadTests = request.app.state.loadtests
    mode = tests.settings.compat_auth
    if mode == "open":
        return
    given = given_loadtest_token(request)
    test_id = request.path_params.get("test_id")
    fits = given is not None and (
        (tests.settings.token is not None and secrets.compare_digest(tests.settings.token, given))
        or await asyncio.to_thread(tests.token_fits, test_id, given)
    )
    permissions.may_write_compat_loadtests(mode, token_given=fits)


router = APIRouter(tags=["load tests (original harness)"])


def _answer(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=CORS)


def _defined(**fields: Any) -> dict:
    # The original was JavaScript: undefined fields are left out of its answers.
    return {k: v for k, v in fields.items() if v is not None}


def _store(request: Request) -> LoadTests:
    return request.app.state.loadtests


def _refusal_body(state: TestState | None) -> tuple[int, dict] | None:
    if state is None:
        return 404, NOT_FOUND
    if state.started is None:
        return 400, NOT_STARTED
    if state.finished is not None:
        return 400, ALREADY_FINISHED
    return None


def _refusal(state: TestState | None) -> JSONResponse | None:
    refused = _refusal_body(state)
    return None if refused is None else _answer(refused[1], refused[0])


def _ongoing(store: LoadTests, test_id: str) -> JSONResponse | None:
    return _refusal(store.state(test_id))


@router.get("/status", openapi_extra=rule(permissions.ANYONE))
async def status() -> JSONResponse:
    return _answer({"status": "ok"})


@router.options(
    "/test", status_code=204, response_class=Response, openapi_extra=rule(permissions.ANYONE)
)
@router.options(
    "/status", status_code=204, response_class=Response, openapi_extra=rule(permissions.ANYONE)
)
async def preflight() -> Response:
    """A CORS preflight: every origin, method and header is allowed."""
    return Response(status_code=204, headers=CORS)


@router.options(
    "/test/{rest:path}",
    status_code=204,
    response_class=Response,
    openapi_extra=rule(permissions.ANYONE),
)
async def preflight_below(rest: str) -> Response:
    """A CORS preflight of any route below ``/test``."""
    return Response(status_code=204, headers=CORS)


def _json_value(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return _loads(raw)
    except ValueError:
        return None


async def _json_body(request: Request) -> Any:
    return _json_value(await request.body())


def _create(request: Request, test_id: str | None, body: Any) -> JSONResponse:
    if test_id is not None and not _SAFE_ID.fullmatch(test_id):
        # The id becomes a file name ({id}.json): only characters safe in every file system.
        return _answer(INVALID_ID, 400)
    started = bool(isinstance(body, dict) and body.get("started"))
    definition = {}
    if isinstance(body, dict) and isinstance(body.get("thresholds"), dict):
        definition["thresholds"] = body["thresholds"]
    try:
        row = _store(request).create(test_id, definition, started)
    except FileExistsError:
        existing = _store(request).row(test_id or "")
        return _answer(_defined(id=test_id, started=existing.started if existing else None))
    return _answer(_defined(id=row["id"], started=row["started"]))


@router.post(
    "/test", dependencies=[Depends(compat_writer)], openapi_extra=rule(permissions.COMPAT_WRITER)
)
async def create_random(request: Request) -> JSONResponse:
    return _create(request, None, await _json_body(request))


@router.post(
    "/test/{test_id}",
    dependencies=[Depends(compat_writer)],
    openapi_extra=rule(permissions.COMPAT_WRITER),
)
async def create_named(test_id: str, request: Request) -> JSONResponse:
    return _create(request, test_id, await _json_body(request))


@router.get("/test/{test_id}", openapi_extra=rule(permissions.ANYONE))
def get_test(test_id: str, request: Request, dataPoints: str | None = None) -> Response:
    store = _store(request)
    row = store.row(test_id)
    if row is None:
        return _answer(NOT_FOUND, 404)
    if dataPoints == "true":
        return Response(
            "".join(store.whole_test_json(test_id)), media_type="application/json", headers=CORS
        )
    return _answer(_defined(id=row.id, started=row.started, finished=row.finished))


@router.put(
    "/test/{test_id}/start",
    dependencies=[Depends(compat_writer)],
    openapi_extra=rule(permissions.COMPAT_WRITER),
)
def start_test(test_id: str, request: Request) -> JSONResponse:
    store = _store(request)
    row = store.row(test_id)
    if row is None:
        return _answer(NOT_FOUND, 404)
    if row.finished is not None:
        return _answer(ALREADY_FINISHED, 400)
    return _answer({"id": test_id, "started": store.start(test_id)})


@router.put(
    "/test/{test_id}/finish",
    dependencies=[Depends(compat_writer)],
    openapi_extra=rule(permissions.COMPAT_WRITER),
)
def finish_test(test_id: str, request: Request) -> Response:
    store = _store(request)
    refused = _ongoing(store, test_id)
    if refused is not None:
        return refused
    store.finish(test_id)
    return Response(
        "".join(store.whole_test_json(test_id)), media_type="application/json", headers=CORS
    )


async def put_metrics_body(app: Any, test_id: str, peer_id: str, raw: bytes) -> tuple[int, bytes]:
    """``PUT /test/{id}/peer/{peerId}/metrics``: (status, JSON answer), after the commit."""
    store: LoadTests = app.state.loadtests
    refused = _refusal_body(await store.state_async(test_id))
    if refused is not None:
        return refused[0], _dumpb(refused[1])
    body = _json_value(raw)
    if body is not None and nested_too_deeply(raw, body):
        body = None  # kept as the original keeps a body it cannot read: no metrics
    encoded, point = await store.add_datapoint_json(
        test_id, peer_id, body if body is not None else {}
    )
    app.state.loadtest_relay.offer(test_id, [point])
    return 200, encoded


@router.put(
    "/test/{test_id}/peer/{peer_id}/metrics",
    dependencies=[Depends(compat_writer)],
    openapi_extra=rule(permissions.COMPAT_WRITER),
)
async def put_metrics(test_id: str, peer_id: str, request: Request) -> Response:
    status, body = await put_metrics_body(request.app, test_id, peer_id, await request.body())
    return Response(body, status_code=status, media_type="application/json", headers=CORS)


@router.put(
    "/test/{test_id}/peer/{peer_id}/results",
    dependencies=[Depends(compat_writer)],
    openapi_extra=rule(permissions.COMPAT_WRITER),
)
async def put_results(test_id: str, peer_id: str, request: Request) -> JSONResponse:
    store = _store(request)
    body = await _json_body(request)
    refused = _ongoing(store, test_id)
    if refused is not None:
        return refused
    return _answer(store.add_results(test_id, peer_id, body if isinstance(body, dict) else {}))


@router.put(
    "/test/{test_id}/topology",
    dependencies=[Depends(compat_writer)],
    openapi_extra=rule(permissions.COMPAT_WRITER),
)
async def put_topology(test_id: str, request: Request) -> JSONResponse:
    store = _store(request)
    body = await _json_body(request)
    refused = _ongoing(store, test_id)
    if refused is not None:
        return refused
    store.add_topology(test_id, body)
    state = store.state(test_id)
    return _answer(_defined(id=test_id, started=state.started if state else None))
