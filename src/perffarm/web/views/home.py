"""The home page: projects, latest runs, machines, open alerts."""

from __future__ import annotations

from typing import Any

from perffarm.server.store import alerts as alert_store
from perffarm.server.store import dashboard
from perffarm.server.store import runs as run_store
from perffarm.web.views import Reader
from perffarm.web.views.machines import visible_machines

LATEST_RUNS = 20


def open_alerts(read: Reader, limit: int = 20) -> list[dict[str, Any]]:
    """Alerts not dealt with yet (new or acknowledged), newest first."""
    found = []
    for state in ("new", "acknowledged"):
        items, _ = alert_store.list_alerts(
            read.conn,
            project=None,
            state=state,
            branch=None,
            admin=read.admin,
            cursor=None,
            limit=limit,
            viewer=read.viewer,
        )
        found += [alert.model_dump(mode="json") for alert in items]
    found.sort(key=lambda alert: alert["id"], reverse=True)
    return found[:limit]


def home(read: Reader, _: None = None) -> dict[str, Any]:
    """The home page's data: projects, latest runs, machines, open alerts."""
    runs, _cursor = run_store.list_runs(
        read.conn,
        run_store.RunFilter(),
        admin=read.admin,
        cursor=None,
        limit=LATEST_RUNS,
        viewer=read.viewer,
    )
    return {
        "projects": dashboard.projects(read.conn, admin=read.admin, viewer=read.viewer),
        "latest_runs": [run.model_dump(mode="json") for run in runs],
        "machines": visible_machines(read),
        "alerts": open_alerts(read),
    }
