"""Reporting over HTTP: runs, and load-test datapoint batches, through ``Client``."""

from __future__ import annotations

from typing import Any

import httpx

from perffarm.client._documents import RunLike
from perffarm.client.sync import Client


class HttpReporter:
    """Reports to ``url`` (the server's base URL) with ``token``: a machine's
    ``NAME:SECRET``, a user's upload token (then name ``machine``), or the admin token.

    It is ``Client`` with the answers as dicts; failures are ``ReportError`` (the client's
    ``ClientError``), retried first when worth it (``retries``).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        machine: str | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        client: httpx.Client | None = None,
    ) -> None:
        self.client = Client(
            url, token=token, machine=machine, timeout=timeout, retries=retries, http=client
        )

    def submit(self, run: RunLike) -> dict[str, Any]:
        """Store one run; answers the server's outcome (``stored`` or ``already-stored``)."""
        return self.client.submit_run(run).model_dump(mode="json")

    def send_datapoints(self, test_id: str, batch: dict[str, Any]) -> dict[str, Any]:
        """One load-test batch (``{"worker", "incarnation", "sequence", "datapoints"}``)."""
        return self.client.send_datapoints(test_id, batch).model_dump(mode="json")

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HttpReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
