"""Payloads about alerts: a change that matters in one machine's history of one result,
alerts grouped by commit range, their histories, "new normal" breaks and the detector's
settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from perffarm.model.text import Text

AlertState = Literal["new", "acknowledged", "invalid", "fixed"]
AlertKind = Literal["regression", "improvement"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Noise(_Payload):
    """The noise of the old level the change stood out from."""

    cv: float | None
    run_to_run: float | None
    level: str


class CommitRange(_Payload):
    """Between which runs (and commits) the new level starts."""

    before: str | None
    after: str | None
    run_before: str
    run_after: str
    commit_time_before: datetime | None
    commit_time_after: datetime | None


class Alert(_Payload):
    id: int
    group_id: int
    series_id: int
    project: str
    benchmark: str
    params: dict[str, Any]
    metric: str
    machine: str
    branch: str
    fingerprint: str
    unit: str
    direction: str
    kind: AlertKind = Field(description="Direction-aware: a slower time is a regression.")
    magnitude: float = Field(description="Relative change of the level (0.1 = +10 %).")
    magnitude_ci: tuple[float, float] | None
    p_value: float
    mean_before: float
    mean_after: float
    n_before: int
    n_after: int
    noise: Noise
    commit_range: CommitRange
    state: AlertState
    state_by: str
    state_at: datetime | None
    state_note: str | None
    created_at: datetime | None


class AlertEvent(_Payload):
    state: AlertState
    by: str
    at: datetime | None
    note: str | None


class AlertDetail(Alert):
    history: list[AlertEvent]


class AlertGroup(_Payload):
    """Alerts of one (project, branch, commit range): what one change of code did."""

    id: int
    project: str
    branch: str | None
    commit_before: str | None
    commit_after: str | None
    created_at: datetime | None
    alerts: list[Alert]
    regressions: int
    improvements: int
    states: dict[str, int]


class StateChange(_Payload):
    state: AlertState
    note: Text | None = Field(None, max_length=2000)


class BreakRequest(_Payload):
    run_id: Text = Field(
        ..., min_length=1, max_length=36, description="The first run of the new normal."
    )
    note: Text | None = Field(None, max_length=2000)


class SeriesBreak(_Payload):
    series_id: int
    run_id: str
    machine: str
    created_by: str
    created_at: datetime | None
    note: str | None


class BreakAdded(_Payload):
    series_id: int
    run_id: str
    created_by: str
    created_at: datetime | None
    note: str | None
    invalidated_alerts: list[int]


class SettingsChange(_Payload):
    alert_webhook_url: Text | None = Field(None, max_length=2000)
    alert_p_value: Text | float | None = None
    alert_min_magnitude: Text | float | None = Field(None, description="e.g. 2% or 0.02")


class AlertSettingsView(_Payload):
    p_value: float
    min_magnitude: float
    window: int
    webhook_url: str | None
    overridden_by_environment: list[str] = Field(
        description="The environment variables that override stored settings."
    )


class DetectionStatus(_Payload):
    """The background detector of one server process."""

    pending: int
    running: bool
    tracks_cached: int
    tracks_analysed: int
    alerts_recorded: int
    errors: int
