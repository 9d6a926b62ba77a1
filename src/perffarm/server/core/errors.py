"""Domain errors by kind. Raised by the store, the services and the permissions; each
transport maps a kind to its status once (``http/errors.py``, ``grpc/errors.py``), so no
route translates an error by hand.

The message is for a person: it says what is wrong and, where it can, what to do. It never
contains a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One field of a request at fault (``body.runs.0.results.3.unit``) and why."""

    field: str
    message: str


class PerffarmError(Exception):
    """Base of the domain errors; never raised itself."""

    def __init__(
        self,
        message: str,
        *,
        fields: Sequence[FieldProblem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = list(fields)
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return self.message


class NotFound(PerffarmError):
    """Nothing by that name or id, or nothing the caller may see (which reads the same)."""


class BadRequest(PerffarmError):
    """The request itself is malformed (a header missing, a body that is not JSON)."""


class Invalid(PerffarmError):
    """A value in the request cannot be used (a filter, a cursor, a body field)."""


class Conflict(PerffarmError):
    """The request contradicts what is stored (a name taken, a state that forbids it)."""


class Unauthorized(PerffarmError):
    """No credential where one is needed, or one that is wrong, expired or revoked."""


class Forbidden(PerffarmError):
    """A valid credential that may not do this."""


class TooManyRequests(PerffarmError):
    """Over a rate limit; ``retry_after`` seconds from now it may try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class Unavailable(PerffarmError):
    """A temporary state (the database unreachable or busy): retry later."""
