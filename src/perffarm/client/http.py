"""Reporting over HTTP (httpx): runs, and load-test datapoint batches."""

from __future__ import annotations

from typing import Any

import httpx

from perffarm.client._documents import RunLike, run_json
from perffarm.client.errors import ReportError


class HttpReporter:
    """Reports to ``url`` (the server's base URL) with ``token``: a machine's
    ``NAME:SECRET``, a user's upload token (then name ``machine``), or the admin token."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        machine: str | None = None,
        timeout: float = 60.0,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if machine:
            headers["X-Perffarm-Machine"] = machine
        self._client = client or httpx.Client(timeout=timeout)
        self._base = url.rstrip("/") + "/api/v1"
        self._headers = headers

    def _post(self, path: str, body: bytes, ok: tuple[int, ...] = (200, 201)) -> Any:
        try:
            answer = self._client.post(self._base + path, content=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise ReportError(f"cannot reach {self._base}: {exc}") from None
        if answer.status_code not in ok:
            try:
                detail = answer.json().get("detail") or answer.reason_phrase
            except ValueError:
                detail = answer.text[:200] or answer.reason_phrase
            raise ReportError(f"HTTP {answer.status_code}: {detail}", answer.status_code)
        return answer.json()

    def submit(self, run: RunLike) -> dict[str, Any]:
        """Store one run; answers the server's outcome (``stored`` or ``already-stored``)."""
        return self._post("/runs", run_json(run))

    def send_datapoints(self, test_id: str, batch: dict[str, Any]) -> dict[str, Any]:
        """One load-test batch (``{"worker", "incarnation", "sequence", "datapoints"}``)."""
        import json

        return self._post(f"/loadtests/{test_id}/datapoints", json.dumps(batch).encode())

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
