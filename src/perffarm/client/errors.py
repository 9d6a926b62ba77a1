"""The errors of perffarm's client: one small hierarchy, each message one line saying what to do.

::

    ClientError (also named ReportError)   code: HTTP status, gRPC code name, or None
    ├── ServerUnreachable                  no answer, after the retries
    ├── IncompatibleServer                 another API version, or not a perffarm server
    ├── CredentialsError                   the credentials file (perffarm.client.credentials)
    │   └── NoCredentials
    └── ApiError                           the server answered an error: status, detail, errors
        ├── Invalid          400, 422
        ├── Unauthorized     401
        ├── Forbidden        403
        ├── NotFound         404
        ├── Conflict         409
        ├── TooLarge         413
        ├── Unavailable      429, 502, 503, 504 (still so after the retries)
        └── ServerError      other 5xx
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: The longest piece of a server's answer quoted in a message.
MAX_QUOTED = 300

_SPACES = re.compile(r" +")


def one_line(text: object, limit: int = MAX_QUOTED) -> str:
    """``text`` as one short printable line: what a message may quote of an answer
    (control, format and other unprintable characters become spaces)."""
    head = str(text)[: limit * 4]
    flat = "".join(char if char.isprintable() else " " for char in head)
    flat = _SPACES.sub(" ", flat).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class ClientError(Exception):
    """The server refused, could not be reached, or could not be understood.

    ``str()`` is one line for a person; ``code`` is the HTTP status (an int), the gRPC
    status code's name (``"UNAUTHENTICATED"``), or None when the server gave no status.
    """

    def __init__(self, message: str, code: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code


#: The name of ``ClientError`` before there was one client (GrpcReporter and HttpReporter).
ReportError = ClientError


class ServerUnreachable(ClientError):
    """No answer (connection refused, reset, timed out) after every try."""

    def __init__(self, message: str, *, tries: int | None = None) -> None:
        super().__init__(message)
        self.tries = tries


class IncompatibleServer(ClientError):
    """The server speaks another major API version, or is no perffarm server at all."""


class CredentialsError(ClientError):
    """The credentials file cannot be read or written."""


class NoCredentials(CredentialsError):
    """No credentials for that server: register the machine or sign in first."""


@dataclass(frozen=True)
class FieldProblem:
    """One bad field of a refused request, as the server's ``errors`` list names it."""

    field: str
    message: str


class ApiError(ClientError):
    """The server answered with an error status.

    ``status`` is the HTTP status, ``detail`` the server's explanation (its ``detail``,
    shortened to one line), ``errors`` its field errors; ``retry_after`` the seconds the
    server asked to wait (429 and 503), when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        detail: str,
        errors: Sequence[FieldProblem] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status)
        self.status = status
        self.detail = detail
        self.errors = tuple(errors)
        self.retry_after = retry_after


class Invalid(ApiError):
    """400 or 422: the request is wrong; sending it again will not help."""


class Unauthorized(ApiError):
    """401: no credentials, or wrong ones."""


class Forbidden(ApiError):
    """403: the credentials are right but do not allow this."""


class NotFound(ApiError):
    """404: no such thing on that server."""


class Conflict(ApiError):
    """409: the server has something else under that name or id, or a state that forbids it."""


class TooLarge(ApiError):
    """413: the request is larger than the server takes."""


class Unavailable(ApiError):
    """429, 502, 503 or 504 still after every retry: busy, restarting, or behind a proxy
    that cannot reach it."""


class ServerError(ApiError):
    """Another 5xx: the server failed; its log says why."""


#: The class of an error answer, by status.
BY_STATUS: dict[int, type[ApiError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: Invalid,
    429: Unavailable,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def error_class(status: int) -> type[ApiError]:
    if status in BY_STATUS:
        return BY_STATUS[status]
    return ServerError if status >= 500 else ApiError
