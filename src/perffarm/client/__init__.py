"""perffarm's client of its own results server, and reporting from any Python harness.

The one client of the HTTP API (``Client``, and ``AsyncClient`` for asyncio) retries what
is worth retrying, refuses a server whose API it does not speak, and raises typed errors
(``perffarm.client.errors``) whose messages say what to do::

    from perffarm.client import Client
    with Client("http://farm.example.org:8080", token="lab-01:SECRET") as client:
        client.submit_run(run)

Reporting in three lines::

    from perffarm.client import GrpcReporter
    reporter = GrpcReporter("farm.example.org:50051", token="lab-01:SECRET")
    reporter.submit(run)            # a RunDocument, its dict or its JSON

``HttpReporter`` does the same over HTTP (``HttpReporter("https://farm.example.org",
token=...)``). Both raise ``ReportError`` (the base of the typed errors) with the server's
own explanation. The client never imports the server: ``GrpcReporter`` needs
``pip install 'perffarm[grpc]'`` only. The credentials files: ``perffarm.client.credentials``.
See docs/grpc.md and docs/server.md.
"""

from __future__ import annotations

from perffarm.client._core import normalize_server
from perffarm.client.aio import AsyncClient
from perffarm.client.errors import (
    ApiError,
    ClientError,
    Conflict,
    CredentialsError,
    Forbidden,
    IncompatibleServer,
    Invalid,
    NoCredentials,
    NotFound,
    ReportError,
    ServerError,
    ServerUnreachable,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from perffarm.client.grpc import Ack, GrpcReporter, Submitted
from perffarm.client.http import HttpReporter
from perffarm.client.sync import Client

__all__ = [
    "Ack",
    "ApiError",
    "AsyncClient",
    "Client",
    "ClientError",
    "Conflict",
    "CredentialsError",
    "Forbidden",
    "GrpcReporter",
    "HttpReporter",
    "IncompatibleServer",
    "Invalid",
    "NoCredentials",
    "NotFound",
    "ReportError",
    "ServerError",
    "ServerUnreachable",
    "Submitted",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "normalize_server",
]
