"""The one error the client raises."""

from __future__ import annotations


class ReportError(Exception):
    """The server refused or could not be reached; ``str()`` is the server's explanation.

    ``code`` is the HTTP status (an int) or the gRPC status code's name (``"UNAUTHENTICATED"``,
    ``"INVALID_ARGUMENT"``, ...); None when the server was not reached.
    """

    def __init__(self, message: str, code: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code
