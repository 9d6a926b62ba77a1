"""The admins' data page: the retention policy, what the database holds, what the policy
would remove now, the keep marks and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perffarm.model.lifecycle import RetentionPolicy
from perffarm.server import permissions
from perffarm.server.core.timeutil import now
from perffarm.server.store import lifecycle
from perffarm.web.views import Reader

AUDIT_SHOWN = 100


@dataclass(frozen=True)
class DataSource:
    read: Reader
    policy: RetentionPolicy


def data(source: DataSource, _: None) -> dict[str, Any]:
    """Admins only: the policy, rows per table, what a prune would remove, keep marks and
    the newest audit events."""
    read = source.read
    permissions.require_admin(read.who)
    before_samples = source.policy.samples_cutoff(now())
    runs = samples = attachments = 0
    if before_samples is not None:
        runs, samples, attachments = lifecycle.reducible_totals(read.conn, before_samples)
    tables, total = lifecycle.table_usage(read.conn)
    return {
        "policy": source.policy.model_dump(),
        "database_bytes": total,
        "tables": [table.model_dump() for table in tables if table.rows],
        "would_reduce": {"runs": runs, "samples": samples, "attachments": attachments},
        "keep_marks": [mark.model_dump(mode="json") for mark in lifecycle.keep_marks(read.conn)],
        "audit": [
            event.model_dump(mode="json")
            for event in lifecycle.audit_events(read.conn, limit=AUDIT_SHOWN)
        ],
    }
