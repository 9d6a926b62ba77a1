"""The load-test pages: the list, and one test with its kept summary once finished.

They read the server's load-test store (``request.app.state.loadtests``) through the few
public methods named by ``LoadTests``, so the store may change inside as it likes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel

from perffarm.server.core.errors import NotFound

TESTS_LISTED = 200


class LoadTests(Protocol):
    """What these pages use of the server's load-test store."""

    def list(self, limit: int) -> Sequence[BaseModel]: ...

    def row(self, test_id: str) -> Any: ...

    def info(self, row: Any) -> BaseModel: ...


def _require(store: LoadTests | None) -> LoadTests:
    if store is None:
        raise NotFound("this server does not run load tests")
    return store


def loadtests(store: LoadTests | None, _: None = None) -> dict[str, Any]:
    """Load tests, newest first: status, datapoints, verdict."""
    found = _require(store).list(TESTS_LISTED)
    return {"tests": [info.model_dump(mode="json") for info in found]}


def loadtest(store: LoadTests | None, test_id: str) -> dict[str, Any]:
    """One load test; a finished one with its summary (thresholds, verdict)."""
    store = _require(store)
    row = store.row(test_id)
    if row is None:
        raise NotFound(f"no load test {test_id!r}")
    summary = json.loads(row.summary) if row.finished is not None and row.summary else None
    return {"test": store.info(row).model_dump(mode="json"), "summary": summary}
