"""Who is calling over gRPC: the HTTP rules, read from the call metadata.

The metadata carries what the HTTP headers carry (``authorization: Bearer ...``,
``x-perffarm-machine``, ``x-perffarm-loadtest-token``), and ``server/auth.resolve_bearer``
decides, so a credential means the same on both transports. A credential that is given
but wrong is UNAUTHENTICATED; a valid one that may not do this is PERMISSION_DENIED.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import grpc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perffarm.server import machines
from perffarm.server.auth import AuthRefused, Principal, resolve_bearer

AUTHORIZATION = "authorization"
MACHINE_KEY = "x-perffarm-machine"
LOADTEST_TOKEN_KEY = "x-perffarm-loadtest-token"


class Refused(Exception):
    """End the call with this status code and detail (nothing was stored)."""

    def __init__(self, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def metadata_value(metadata: Sequence[tuple[str, str | bytes]] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name.lower() == key:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None


def resolve(engine: Engine, admin_hash: str, header: str | None) -> Principal:
    """The caller (blocking: run it in a thread); Refused when the credential is wrong."""
    try:
        with engine.connect() as conn:
            principal = resolve_bearer(conn, header, admin_hash)
    except AuthRefused as exc:
        code = (
            grpc.StatusCode.PERMISSION_DENIED
            if exc.status == 403
            else grpc.StatusCode.UNAUTHENTICATED
        )
        raise Refused(code, exc.detail) from None
    return principal


def needs_upload(principal: Principal) -> None:
    """The HTTP rule for anything but a read: a user's token needs the upload scope."""
    if principal.kind == "user" and "upload" not in principal.scopes:
        raise Refused(
            grpc.StatusCode.PERMISSION_DENIED,
            "this token may only read (scope read): create one with scope upload or admin "
            "to change anything",
        )


def upload_machine(
    engine: Engine,
    principal: Principal,
    machine_name: str | None,
    *,
    anonymous_machine: str | None = None,
) -> machines.Machine:
    """The machine to store runs for: as ``api/deps.machine_caller`` decides over HTTP.

    ``anonymous_machine`` (``--grpc-qps-machine``) is used for callers without credentials
    (gRPC's QPS driver sends none); without it they are refused.
    """
    if principal.machine is not None:
        return principal.machine
    if principal.anonymous:
        if anonymous_machine:
            found = _machine_row(engine, anonymous_machine)
            if found is None:
                raise Refused(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"the server stores unauthenticated QPS reports for machine "
                    f"{anonymous_machine!r} (--grpc-qps-machine), which is not registered: "
                    "register it with `perffarm machine register`",
                )
            return machines.Machine(
                id=found.id, name=found.name, owner=found.owner, approved=found.approved
            )
        raise Refused(
            grpc.StatusCode.UNAUTHENTICATED,
            "this needs a machine's credentials (metadata authorization: Bearer NAME:SECRET), "
            f"or a user's upload token with the machine named in {MACHINE_KEY}; register a "
            "machine with `perffarm machine register`",
        )
    needs_upload(principal)
    if not machine_name:
        raise Refused(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"name the machine to upload as in the {MACHINE_KEY} metadata",
        )
    row = _machine_row(engine, machine_name)
    owns = row is not None and principal.user is not None and row.owner_user_id == principal.user.id
    if row is None or not (owns or principal.admin):
        raise Refused(
            grpc.StatusCode.PERMISSION_DENIED,
            f"you may not upload as machine {machine_name!r}: only its owner or an admin may",
        )
    return machines.Machine(id=row.id, name=row.name, owner=row.owner, approved=row.approved)


def _machine_row(engine: Engine, name: str) -> sa.Row | None:
    with engine.connect() as conn:
        return machines.owner_row(conn, name)


def loadtest_writer(principal: Principal, given_token: str | None, token: str | None) -> None:
    """The HTTP rule of ``/api/v1/loadtests`` writes: the load-test token, or credentials."""
    if token and given_token and secrets.compare_digest(token, given_token):
        return
    if principal.anonymous:
        raise Refused(
            grpc.StatusCode.UNAUTHENTICATED,
            f"writing load tests needs the load-test token ({LOADTEST_TOKEN_KEY} metadata), "
            "the admin token or a machine's credentials (authorization: Bearer ...)",
        )
    needs_upload(principal)
