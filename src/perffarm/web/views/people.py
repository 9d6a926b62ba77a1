"""The people pages: everybody (owners and all results), and one owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perffarm.server.store import dashboard
from perffarm.server.store import results as result_store
from perffarm.web.views import Reader
from perffarm.web.views.machines import visible_machines

RESULTS_PAGE = 200


@dataclass(frozen=True)
class PersonQuery:
    owner: str | None
    """None: everybody's results."""
    cursor: str | None = None


def person(read: Reader, q: PersonQuery) -> dict[str, Any]:
    """One owner's machines and results (one page; pass next_cursor back as cursor)."""
    # owner=None: everybody's results, for ``people``.
    items, next_cursor = result_store.list_results(
        read.conn,
        result_store.ResultFilter(owner=q.owner),
        admin=read.admin,
        cursor=q.cursor,
        limit=RESULTS_PAGE,
        samples=False,
        viewer=read.viewer,
    )
    machines = [] if q.owner is None else visible_machines(read, owner=q.owner)
    return {
        "owner": q.owner,
        "machines": machines,
        "results": [item.model_dump(mode="json") for item in items],
        "next_cursor": next_cursor,
    }


def people(read: Reader, cursor: str | None) -> dict[str, Any]:
    """Everybody: owners with their machines and runs, and all results (one page)."""
    everybody = person(read, PersonQuery(owner=None, cursor=cursor))
    owners = dashboard.owners(read.conn, admin=read.admin, viewer=read.viewer)
    return {"owners": owners, **everybody}
