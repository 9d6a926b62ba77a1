"""Request and response payloads of the results server's HTTP API (``/api/v1``).

The agent's upload client and the server both use these models and nothing else of each
other. ``API_VERSION`` is bumped on every incompatible change; the server announces the
range of client versions it accepts in ``/api/v1/health`` so that a client can say
"server too old" or "server too new" instead of failing on a confusing field error.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from perffarm.model.text import Text

#: The API this code speaks (both sides).
API_VERSION = 1
#: The oldest server API this client can talk to.
CLIENT_MIN_SERVER_API = 1
#: The oldest client API this server accepts.
SERVER_MIN_CLIENT_API = 1

API_PREFIX = "/api/v1"
#: Header a client sends with its API version; a server may refuse a version it dropped.
API_VERSION_HEADER = "X-Perffarm-Api-Version"

#: Machine names go into URLs, credentials tokens (``name:secret``) and file names.
MACHINE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_MACHINE_NAME = re.compile(MACHINE_NAME_PATTERN)


def valid_machine_name(name: str) -> bool:
    return bool(_MACHINE_NAME.fullmatch(name))


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(_Payload):
    status: str = "ok"
    api_version: int = API_VERSION
    min_client_api_version: int = SERVER_MIN_CLIENT_API
    server_version: str
    database: str = Field(description="Database kind: sqlite or postgresql.")


class FieldError(_Payload):
    """One bad field: a dotted path into the request (``body.results.0.metric``) and why."""

    field: str
    message: str


class ErrorBody(_Payload):
    """Every error answer of the API has this shape."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class ProbeFigures(_Payload):
    """Request/response round trips over one kept-alive connection (netperf TCP_RR style)."""

    transactions: int = Field(ge=0)
    seconds: float = Field(ge=0)
    transactions_per_second: float = Field(ge=0)
    latency_p50_ms: float = Field(ge=0)
    latency_p90_ms: float = Field(ge=0)
    latency_p99_ms: float = Field(ge=0)
    latency_max_ms: float = Field(ge=0)
    measured_at: datetime | None = None


class BatchUpload(_Payload):
    """Several run documents at once, plus figures measured at upload time.

    ``runs`` items are run documents (schema ``perffarm.run/1``); each is validated on its
    own so that one bad document does not refuse its neighbours. The probe travels here,
    beside the documents, because changing a document at upload would change its content
    and turn a re-upload into a conflict.
    """

    runs: list[dict[str, Any]] = Field(max_length=1000)
    probe: ProbeFigures | None = None


class Outcome(StrEnum):
    STORED = "stored"
    ALREADY_STORED = "already-stored"
    CONFLICT = "conflict"
    INVALID = "invalid"


class RunOutcome(_Payload):
    id: str | None = Field(description="The run id, when the document had a readable one.")
    index: int = Field(description="Position of the document in the batch.")
    outcome: Outcome
    message: str = ""
    errors: list[FieldError] = Field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        """The server has this run (now or before): the agent may mark it uploaded."""
        return self.outcome in (Outcome.STORED, Outcome.ALREADY_STORED)


class BatchResult(_Payload):
    machine: str
    machine_approved: bool
    outcomes: list[RunOutcome]


class SingleResult(_Payload):
    id: str
    outcome: Outcome
    machine: str
    machine_approved: bool
    message: str = ""


class MachineRegistration(_Payload):
    name: str = Field(pattern=MACHINE_NAME_PATTERN, description="Alias of the machine.")
    owner: Text = Field(min_length=1, max_length=200)


class MachineCredentials(_Payload):
    """The answer to a registration: the only time the secret is ever shown."""

    name: str
    owner: str
    approved: bool
    secret: str


class FingerprintChange(_Payload):
    old: str | None
    new: str
    run_id: str | None
    at: datetime


class MachineInfo(_Payload):
    name: str
    owner: str
    approved: bool
    registered_at: datetime
    approved_at: datetime | None = None
    last_seen: datetime | None = None
    fingerprint: str | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Environment sections of its latest run."
    )
    probe: ProbeFigures | None = None
    fingerprint_changes: list[FingerprintChange] | None = Field(
        default=None, description="Only in the single-machine answer."
    )
    retired_at: datetime | None = Field(
        default=None, description="When it was retired: it uploads no more."
    )


class RunSummary(_Payload):
    """A run in a listing: its indexed columns, not the whole document."""

    id: str
    project: str
    machine: str
    owner: str
    tag: str | None
    status: str
    branch: str | None
    commit: str | None
    commit_time: datetime | None
    started_at: datetime
    finished_at: datetime | None
    received_at: datetime
    fingerprint: str | None
    result_count: int
    sha256: str
    hidden: bool = Field(description="From a machine not approved yet (admins only see it).")
    probe: ProbeFigures | None = None
    keep: bool = Field(False, description="Marked to keep its samples whatever the retention.")
    summary_only: bool = Field(
        False, description="Its samples and attachments were removed by the retention policy."
    )


class ResultRow(_Payload):
    id: int
    run_id: str
    project: str
    machine: str
    owner: str
    branch: str | None
    commit: str | None
    commit_time: datetime | None
    benchmark: str
    params: dict[str, Any]
    metric: str
    unit: str
    direction: str
    n: int
    mean: float | None
    median: float | None
    stdev: float | None
    min: float | None
    max: float | None
    ci_low: float | None
    ci_high: float | None
    samples: list[float] | None = Field(default=None, description="With samples=true only.")


class SeriesPoint(_Payload):
    run_id: str
    commit: str | None
    commit_time: datetime | None
    branch: str | None
    machine: str
    fingerprint: str | None
    value: float | None = Field(description="The median when known, else the mean.")
    n: int
    mean: float | None
    median: float | None
    stdev: float | None
    min: float | None
    max: float | None
    ci_low: float | None
    ci_high: float | None
    unit: str
    direction: str


T = TypeVar("T")


class Page(_Payload, Generic[T]):
    """One page of a listing; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None = None


def run_id_text(value: Any) -> str | None:
    """The canonical text of a run id, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        return None


class MachineGrant(_Payload):
    """A user the machine's owner lets act on its alerts and series."""

    user: str
    granted_by: str
    granted_at: datetime


class GrantRequest(_Payload):
    user: Text = Field(min_length=1, max_length=100, description="The user to let act.")


class SeriesKey(_Payload):
    """A series row: the id that breaks and alerts refer to, and its key."""

    id: int
    project: str
    benchmark: str
    params: dict[str, Any]
    metric: str
    fingerprint: str | None
    branch: str | None


class BaselineRun(_Payload):
    id: str
    project: str
    machine: str
    branch: str | None
    commit: str | None
    commit_time: datetime | None
    fingerprint: str | None
    started_at: datetime | None


class Baseline(_Payload):
    """The runs a contender is compared with (``perffarm check --server``)."""

    mode: str = Field(description="at: at the commit (or before it); before: its predecessors")
    exact: bool = Field(description="The runs are at exactly the commit asked for.")
    runs: list[BaselineRun]
