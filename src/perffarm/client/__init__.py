"""Report to a perffarm results server from any Python harness, in three lines.

    from perffarm.client import GrpcReporter
    reporter = GrpcReporter("farm.example.org:50051", token="lab-01:SECRET")
    reporter.submit(run)            # a RunDocument, its dict or its JSON

``HttpReporter`` does the same over HTTP (``HttpReporter("https://farm.example.org",
token=...)``). Both raise ``ReportError`` with the server's own explanation. The client
never imports the server: ``GrpcReporter`` needs ``pip install 'perffarm[grpc]'`` only.
See docs/grpc.md.
"""

from __future__ import annotations

from perffarm.client.errors import ReportError
from perffarm.client.grpc import Ack, GrpcReporter, Submitted
from perffarm.client.http import HttpReporter

__all__ = ["Ack", "GrpcReporter", "HttpReporter", "ReportError", "Submitted"]
