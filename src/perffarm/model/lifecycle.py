"""Payloads and rules of data over years: how long raw data is kept, what a prune removed,
what the database holds, and the audit trail of deletions.

A *retention* is a length of time written as a user types it: ``90d``, ``12w``, ``1y``
(365 days), or ``forever`` (the default: nothing is removed).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

_AGE = re.compile(r"(\d{1,5})\s*([dwy])")
_UNIT_DAYS = {"d": 1, "w": 7, "y": 365}
FOREVER = "forever"


def parse_retention(text: str) -> timedelta | None:
    """``90d`` -> 90 days; ``forever`` (or ``never``, ``0``-less empty) -> None (keep all).

    Raises ValueError with a message a user can act on."""
    value = text.strip().lower()
    if value in (FOREVER, "never", ""):
        return None
    match = _AGE.fullmatch(value)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a retention: write a number of days, weeks or years "
            "(90d, 12w, 1y) or 'forever'"
        )
    return timedelta(days=int(match.group(1)) * _UNIT_DAYS[match.group(2)])


def format_retention(kept: timedelta | None) -> str:
    return FOREVER if kept is None else f"{kept.days}d"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetentionPolicy(_Payload):
    """How long the server keeps raw data; summaries, verdicts and alerts stay for good."""

    keep_samples: str = Field(
        FOREVER,
        description="Raw samples and attachments of a run, counted from its start "
        "(then the run keeps its summaries and stays on every chart and comparison).",
    )
    keep_datapoints: str = Field(
        FOREVER,
        description="A load test's datapoints, counted from its finish (its summary, "
        "verdict and results file stay).",
    )

    def samples_cutoff(self, now: datetime) -> datetime | None:
        kept = parse_retention(self.keep_samples)
        return None if kept is None else now - kept

    def datapoints_cutoff(self, now: datetime) -> datetime | None:
        kept = parse_retention(self.keep_datapoints)
        return None if kept is None else now - kept


class PruneReport(_Payload):
    """What a prune removed (or, with ``dry_run``, would remove)."""

    dry_run: bool = False
    runs_reduced: int = Field(0, description="Runs reduced to their summaries.")
    samples_removed: int = Field(0, description="Raw samples those runs held.")
    attachments_removed: int = 0
    loadtests_reduced: int = Field(0, description="Load tests whose datapoints were removed.")
    datapoints_removed: int = 0
    device_codes_removed: int = 0
    sessions_removed: int = 0
    sign_ins_removed: int = 0
    tokens_removed: int = Field(0, description="Revoked or expired tokens.")
    rate_events_removed: int = 0

    def removed_anything(self) -> bool:
        return any(
            value for name, value in self.model_dump().items() if name != "dry_run" and value
        )


class TableUsage(_Payload):
    name: str
    rows: int
    bytes: int | None = Field(None, description="On disk, indexes included, when known.")


class GroupUsage(_Payload):
    name: str
    runs: int
    results: int
    samples: int = Field(description="Raw samples still held.")


class Usage(_Payload):
    """What the database holds, and what the retention policy would remove now."""

    database_bytes: int | None = None
    tables: list[TableUsage]
    projects: list[GroupUsage]
    machines: list[GroupUsage]
    policy: RetentionPolicy
    would_remove: PruneReport


class AuditEvent(_Payload):
    """One deletion, retirement, disabling or prune: who, when, what."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str = ""


class KeepMark(_Payload):
    """A project (branch '') or a branch of it whose runs keep their samples for good."""

    project: str
    branch: str = ""
    created_by: str
    created_at: datetime


class KeepRequest(_Payload):
    keep: bool = Field(description="True: the run keeps its samples whatever the retention.")


class KeepMarkRequest(_Payload):
    branch: str = Field("", max_length=200, description="A branch; '' marks the project.")


class RunDeleted(_Payload):
    id: str
    alerts_removed: int = Field(description="Alerts this run was the evidence of, gone with it.")


class ProjectDeleted(_Payload):
    project: str
    runs_deleted: int
