"""One run's page, and the run a stored result belongs to."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from perffarm.server.core.timeutil import iso
from perffarm.server.store import dashboard
from perffarm.server.store import runs as run_store
from perffarm.web.views import Reader


def run(read: Reader, run_id: str) -> dict[str, Any]:
    """The run page's data: the document (attachments without their bytes) and its machine."""
    # Besides the document: machine, owner, arrival, and the run before it.
    text = run_store.run_document(read.conn, run_id, admin=read.admin, viewer=read.viewer)
    document = json.loads(text)
    origin = dashboard.run_origin(read.conn, run_id)
    # The bytes stay on the attachment route; the page needs only what to list.
    for item in document.get("attachments") or []:
        item.pop("content", None)
    # The run before this one on the same machine and branch: what "compare" starts from.
    previous, _ = run_store.list_runs(
        read.conn,
        run_store.RunFilter(
            project=document["project"],
            machine=origin.machine,
            branch=(document.get("source") or {}).get("branch"),
            until=datetime.fromisoformat(document["started_at"].replace("Z", "+00:00")),
        ),
        admin=read.admin,
        cursor=None,
        limit=1,
        viewer=read.viewer,
    )
    return {
        "document": document,
        "machine": origin.machine,
        "owner": origin.owner,
        "received_at": iso(origin.received_at),
        "previous_run": previous[0].id if previous else None,
    }


def result_run(read: Reader, result_id: int) -> str:
    """The run a stored result belongs to (a timeline point links through it)."""
    return dashboard.result_run(read.conn, result_id, admin=read.admin, viewer=read.viewer)
