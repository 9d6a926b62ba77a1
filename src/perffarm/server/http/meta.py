"""Health, ping and the run document's JSON Schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from perffarm import __version__
from perffarm.model import run_json_schema
from perffarm.model.api import Health
from perffarm.server import permissions
from perffarm.server.http.routetable import rule

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=Health, openapi_extra=rule(permissions.UNCHECKED))
def health(request: Request) -> Health:
    """Whether the server runs, and which API versions it speaks."""
    return Health(server_version=__version__, database=request.app.state.engine.dialect.name)


@router.get(
    "/ping",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    openapi_extra=rule(permissions.UNCHECKED),
)
def ping() -> Response:
    """The smallest request/response transaction, for the agent's round-trip probe."""
    return Response(b"pong", media_type="text/plain")


@router.get("/schema/run", openapi_extra=rule(permissions.UNCHECKED))
def run_schema() -> dict[str, Any]:
    """JSON Schema of the run document (perffarm.run/1)."""
    return run_json_schema()
