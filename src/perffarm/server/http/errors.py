"""Domain errors and framework errors as HTTP answers, mapped once for every route.

Every error answer has the shape of ``model.api.ErrorBody``: ``detail`` for people and
``errors`` naming the fields at fault.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from perffarm import redact
from perffarm.model.api import ErrorBody, FieldError
from perffarm.server.core import errors
from perffarm.server.permissions import MACHINE_HEADER

STATUS: dict[type[errors.PerffarmError], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Invalid: 422,
    errors.TooManyRequests: 429,
    errors.Unavailable: 503,
}


def status_of(exc: errors.PerffarmError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def error_response(
    status: int,
    detail: str,
    fields: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(detail=detail, errors=fields or [])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def without_echoed_secrets(request: Request, text: str) -> str:
    """``text`` with what the caller sent that looks like a secret (a machine's
    ``NAME:SECRET`` or a token in the path, the query or the machine header, echoed by a
    "no machine named ..." message) hidden by the one redaction rule: an answer is logged
    by clients and proxies too. Only the caller's values are looked at, so the server's own
    words ("Bearer NAME:SECRET", "?token=") stay as they are."""
    sent = [*request.path_params.values(), *request.query_params.values()]
    sent.append(request.headers.get(MACHINE_HEADER, ""))
    for value in sent:
        if isinstance(value, str) and value and value in text:
            hidden = redact.redact(value)
            if hidden != value:
                text = text.replace(value, hidden)
    return text


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(request)"


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""

    @app.exception_handler(errors.PerffarmError)
    async def _domain(request: Request, exc: errors.PerffarmError) -> JSONResponse:
        status = status_of(exc)
        headers = dict(exc.headers)
        if status == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        if status == 503:
            headers.setdefault("Retry-After", "1")
        fields = [
            FieldError(field=f.field, message=without_echoed_secrets(request, f.message))
            for f in exc.fields
        ]
        detail = without_echoed_secrets(request, exc.message)
        return error_response(status, detail, fields, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [FieldError(field=_field(e["loc"]), message=e["msg"]) for e in exc.errors()]
        shown = "; ".join(f"{e.field}: {e.message}" for e in fields[:3])
        more = f" (and {len(fields) - 3} more)" if len(fields) > 3 else ""
        return error_response(422, f"invalid request: {shown}{more}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(sa.exc.OperationalError)
    async def _database_down(_request: Request, _exc: sa.exc.OperationalError) -> JSONResponse:
        # A database that is unreachable or busy is a temporary state: 503 tells clients
        # to retry, where a 500 would say the request itself is at fault.
        return error_response(
            503, "the database is unavailable; retry later", headers={"Retry-After": "1"}
        )

    @app.exception_handler(sa.exc.DataError)
    async def _unstorable(_request: Request, exc: sa.exc.DataError) -> JSONResponse:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "invalid value"
        return error_response(422, f"a value the database cannot use: {reason}")
