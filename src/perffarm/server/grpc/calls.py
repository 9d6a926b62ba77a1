"""Who is calling over gRPC, and how its calls end: the HTTP rules, read from the call
metadata, and domain errors mapped to status codes once.

The metadata carries what the HTTP headers carry (``authorization: Bearer ...``,
``x-perffarm-machine``, ``x-perffarm-loadtest-token``); ``services/authn`` resolves the
caller and ``permissions`` decides, so a credential means the same on both transports. A
credential that is given but wrong is UNAUTHENTICATED; a valid one that may not do this is
PERMISSION_DENIED.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable
from typing import TypeVar

import grpc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perffarm.server import permissions
from perffarm.server.core import errors
from perffarm.server.core.principal import Machine, Principal
from perffarm.server.services.authn import resolve_bearer
from perffarm.server.services.loadtests import LoadTests
from perffarm.server.store import machines

log = logging.getLogger("perffarm.grpc")

AUTHORIZATION = "authorization"
MACHINE_KEY = "x-perffarm-machine"
LOADTEST_TOKEN_KEY = "x-perffarm-loadtest-token"
INVALID = grpc.StatusCode.INVALID_ARGUMENT

CODES: dict[type[errors.PerffarmError], grpc.StatusCode] = {
    errors.BadRequest: INVALID,
    errors.Invalid: INVALID,
    errors.Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    errors.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.TooManyRequests: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

M = TypeVar("M")


class Refused(Exception):
    """End the call with this status code and detail (nothing was stored)."""

    def __init__(self, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def refusal_of(exc: Exception) -> Refused:
    """The status a failure ends a call with."""
    if isinstance(exc, Refused):
        return exc
    if isinstance(exc, errors.PerffarmError):
        for kind in type(exc).__mro__:
            if kind in CODES:
                return Refused(CODES[kind], exc.message)
    if isinstance(exc, sa.exc.OperationalError):
        return Refused(grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry later")
    if isinstance(exc, sa.exc.DataError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "invalid value"
        return Refused(INVALID, f"a value the database cannot use: {reason}")
    log.error("gRPC call failed", exc_info=exc)
    return Refused(grpc.StatusCode.INTERNAL, "internal error; the server's log says more")


async def guarded(context: grpc.aio.ServicerContext, work: Awaitable[M]) -> M:
    """The answer of ``work``, or the call ended with the status its failure maps to."""
    try:
        return await work
    except Exception as exc:
        refusal = refusal_of(exc)
    await context.abort(refusal.code, refusal.detail)
    raise AssertionError("unreachable")  # abort raises


def metadata_value(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name.lower() == key:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None


def resolve(engine: Engine, admin_hash: str, header: str | None) -> Principal:
    """The caller (blocking: run it in a thread)."""
    with engine.connect() as conn:
        return resolve_bearer(conn, header, admin_hash)


def upload_machine(
    engine: Engine,
    principal: Principal,
    machine_name: str | None,
    *,
    anonymous_machine: str | None = None,
) -> Machine:
    """The machine to store runs for (``permissions.upload_as``). ``anonymous_machine``
    (``--grpc-qps-machine``) is used for callers without credentials (gRPC's QPS driver
    sends none); without it they are refused."""
    if principal.anonymous and anonymous_machine:
        with engine.connect() as conn:
            found = machines.identity(conn, anonymous_machine)
        if found is None:
            raise Refused(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the server stores unauthenticated QPS reports for machine "
                f"{anonymous_machine!r} (--grpc-qps-machine), which is not registered: "
                "register it with `perffarm machine register`",
            )
        return found
    named = None
    if machine_name and principal.machine is None and not principal.anonymous:
        with engine.connect() as conn:
            named = machines.identity(conn, machine_name)
    return permissions.upload_as(principal, machine_name, named, permissions.GRPC)


def loadtest_writer(
    principal: Principal, tests: LoadTests, test_id: str, given_token: str | None
) -> None:
    """The rule of ``/api/v1/loadtests/{id}`` writes, for one test (blocking: run it in a
    thread)."""
    permissions.may_write_loadtest(
        principal,
        test_id,
        token_given=tests.token_fits(test_id, given_token),
        creator_user_id=tests.creator(test_id),
        wording=permissions.GRPC,
    )
