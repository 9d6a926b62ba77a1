"""Runs: ingest (one or a batch), listing, one whole document, attachments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from perffarm.model import RunDocument
from perffarm.model.api import (
    BatchResult,
    BatchUpload,
    ErrorBody,
    FieldError,
    Outcome,
    Page,
    ProbeFigures,
    RunSummary,
    SingleResult,
)
from perffarm.server import permissions
from perffarm.server.core.paging import MAX_PAGE
from perffarm.server.core.principal import Machine, Principal
from perffarm.server.http import downloads
from perffarm.server.http.deps import connection, principal, upload_machine
from perffarm.server.http.routetable import rule
from perffarm.server.services.ingest import field_errors
from perffarm.server.store import runs

router = APIRouter(prefix="/runs", tags=["runs"])

_UNAPPROVED = (
    "machine {name!r} is not approved yet: its runs are stored but hidden until an admin "
    "runs `perffarm machine approve {name}`"
)


@router.post(
    "",
    response_model=SingleResult,
    status_code=201,
    responses={
        200: {"model": SingleResult, "description": "Already stored (same content)."},
        409: {"model": SingleResult, "description": "Same id, different content."},
        422: {"model": ErrorBody},
        413: {"model": ErrorBody},
    },
    openapi_extra=rule(permissions.UPLOADER),
)
def upload_run(
    document: RunDocument,
    request: Request,
    machine: Machine = Depends(upload_machine),
) -> JSONResponse:
    """Store one run document; idempotent on its id. Machine credentials required."""
    (outcome,) = request.app.state.ingestor.ingest(machine, [document])
    if outcome.outcome == Outcome.INVALID:
        errors = [
            FieldError(field=e.field.replace("body.runs.0.", "body.", 1), message=e.message)
            for e in outcome.errors
        ]
        body = ErrorBody(detail=outcome.message, errors=errors)
        return JSONResponse(body.model_dump(), status_code=422)
    status = {Outcome.STORED: 201, Outcome.ALREADY_STORED: 200}.get(outcome.outcome, 409)
    answer = SingleResult(
        id=str(document.id),
        outcome=outcome.outcome,
        machine=machine.name,
        machine_approved=machine.approved,
        message=outcome.message
        if machine.approved
        else f"{outcome.message}; " + _UNAPPROVED.format(name=machine.name),
    )
    return JSONResponse(answer.model_dump(mode="json"), status_code=status)


class _ValidBatch(BaseModel):
    """A batch whose documents are all valid: checked in one pass straight from the JSON."""

    model_config = ConfigDict(extra="forbid")
    runs: list[RunDocument] = Field(max_length=1000)
    probe: ProbeFigures | None = None


def _batch_schema() -> dict[str, Any]:
    schema = BatchUpload.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


@router.post(
    "/batch",
    response_model=BatchResult,
    responses={413: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    openapi_extra=rule(
        permissions.UPLOADER,
        requestBody={
            "required": True,
            "content": {"application/json": {"schema": _batch_schema()}},
        },
    ),
)
async def upload_batch(
    request: Request,
    machine: Machine = Depends(upload_machine),
) -> BatchResult | JSONResponse:
    """Store several run documents, each whole or not at all, with one outcome per document.

    The body is a BatchUpload: ``runs`` (run documents) and ``probe``. Valid documents are
    stored even when others of the batch are invalid; an invalid one is answered with the
    fields at fault. ``probe`` (the agent's round-trip figures) is kept on the machine and
    on every run stored by this request.
    """
    body = await request.body()
    return await run_in_threadpool(_ingest_batch, request, machine, body)


def _ingest_batch(request: Request, machine: Machine, body: bytes) -> BatchResult | JSONResponse:
    items: Sequence[RunDocument | dict[str, Any]]
    try:
        # The common case, every document valid, validated from JSON without building
        # Python dicts first: several times faster than document by document.
        valid = _ValidBatch.model_validate_json(body)
        items, probe = valid.runs, valid.probe
    except ValidationError:
        try:
            batch = BatchUpload.model_validate_json(body)
        except ValidationError as exc:
            errors = field_errors(exc, "body")
            return JSONResponse(
                ErrorBody(detail="invalid batch: " + errors[0].message, errors=errors).model_dump(),
                status_code=422,
            )
        items, probe = batch.runs, batch.probe
    outcomes = request.app.state.ingestor.ingest(machine, items, probe)
    return BatchResult(machine=machine.name, machine_approved=machine.approved, outcomes=outcomes)


@router.get("", response_model=Page[RunSummary], openapi_extra=rule(permissions.ANYONE))
def list_runs(
    project: str | None = None,
    machine: str | None = None,
    owner: str | None = Query(None, description="The owner (user) of the machine."),
    branch: str | None = None,
    commit: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    since: datetime | None = Query(None, description="Runs started at or after this time."),
    until: datetime | None = Query(None, description="Runs started before this time."),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Page[RunSummary]:
    """Runs, newest first, filtered; runs of unapproved machines only for admins."""
    flt = runs.RunFilter(
        project=project,
        machine=machine,
        owner=owner,
        branch=branch,
        commit=commit,
        tag=tag,
        status=status,
        since=since,
        until=until,
    )
    items, next_cursor = runs.list_runs(
        conn, flt, admin=who.admin, cursor=cursor, limit=limit, viewer=who.viewer
    )
    return Page[RunSummary](items=items, next_cursor=next_cursor)


@router.get(
    "/{run_id}",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "The run document."}},
    openapi_extra=rule(permissions.ANYONE),
)
def get_run(
    run_id: uuid.UUID,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """The whole run document, exactly as stored."""
    text = runs.run_document(conn, str(run_id), admin=who.admin, viewer=who.viewer)
    return Response(text, media_type="application/json")


@router.get(
    "/{run_id}/attachments/{name:path}",
    response_class=Response,
    responses={200: {"content": {"*/*": {}}, "description": "The bytes, with their media type."}},
    openapi_extra=rule(permissions.ANYONE),
)
def get_attachment(
    run_id: uuid.UUID,
    name: str,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """One attachment's bytes, with its media type."""
    data, stored_type = runs.attachment(conn, str(run_id), name, admin=who.admin, viewer=who.viewer)
    return Response(
        data,
        media_type=downloads.media_type(stored_type),
        headers={"Content-Disposition": downloads.disposition(name)},
    )
