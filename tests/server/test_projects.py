"""The branches of interest that `perffarm agent` asks the server for."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.server.conftest import Api
from tests.server.support import make_run


def test_branches_of_interest_are_recent_branches_of_approved_machines(api: Api) -> None:
    lab = api.register("lab-01")
    hidden = api.register("hidden-01", approve=False)
    api.batch([make_run(hour=1, branch="main"), make_run(hour=5, branch="rel-2")], lab)
    api.batch([make_run(machine="hidden-01", hour=9, branch="secret-work")], hidden)

    # Every day since the runs (from 2026-01-01), whenever the test runs.
    since = (datetime.now(UTC) - datetime(2026, 1, 1, tzinfo=UTC)).days + 2
    answer = api.get("/projects/demo/branches", days=since)
    assert answer.status_code == 200, answer.text
    assert answer.json()["branches"] == ["rel-2", "main"], "most recently active first"
    # The runs are from 2026-01-01: outside a 1-day window, nothing is of interest.
    assert api.get("/projects/demo/branches", days=1).json()["branches"] == []
    assert api.get("/projects/nothing/branches").status_code == 404
