"""The ``pgbench`` measurement's keys in the suite, and the combinations they make."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from perffarm.adapters.pgbench import (
    SCRIPT_PREFIX,
)
from perffarm.agent.measurement import MeasurementOptions

BUILTIN_MODES = {
    "read-write": ["-b", "tpcb-like"],
    "read-only": ["-S"],
    "simple-update": ["-N"],
}
# Beyond the requested duration, how long a pgbench run may take (vacuum, connecting,
# finishing the last transactions) before it is considered hung and killed.
RUN_GRACE_SECONDS = 120.0


class PgbenchError(RuntimeError):
    """pgbench failed; the message holds what pgbench said."""


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class PgbenchOptions(MeasurementOptions):
    """The ``pgbench`` measurement's keys in the suite."""

    scale: int = Field(default=1, ge=1, description="pgbench -i -s SCALE")
    clients: list[int] = Field(default=[1], min_length=1, description="client counts (-c)")
    jobs: list[int] = Field(default=[1], min_length=1, description="worker threads (-j)")
    modes: list[str] = Field(
        default=["read-write"],
        min_length=1,
        description="read-write, read-only (-S), simple-update (-N) or script:PATH",
    )
    duration: int = Field(default=10, ge=1, description="seconds per run (-T)")
    warmup_duration: int | None = Field(
        default=None, ge=1, description="seconds per warm-up run; default: duration"
    )
    settings: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="postgresql.conf settings of the private cluster"
    )
    bin_dir: str | None = Field(
        default=None,
        description="PostgreSQL programs to use, e.g. '{{ build.prefix }}/bin'; "
        "default: pg_config --bindir or the newest /usr/lib/postgresql/*/bin",
    )
    init_options: list[str] = Field(
        default_factory=list, description="extra pgbench -i options, e.g. ['--unlogged-tables']"
    )
    protocol: Literal["simple", "extended", "prepared"] = "simple"
    pgbench_options: list[str] = Field(
        default_factory=list, description="extra options for every measured pgbench run"
    )

    _to_list = field_validator("clients", "jobs", mode="before")(_as_list)

    @field_validator("clients", "jobs")
    @classmethod
    def _positive(cls, values: list[int]) -> list[int]:
        for value in values:
            if value < 1:
                raise ValueError(f"must be at least 1, got {value}")
        return values

    @field_validator("modes", mode="before")
    @classmethod
    def _modes_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("modes")
    @classmethod
    def _known_modes(cls, modes: list[str]) -> list[str]:
        for mode in modes:
            if mode in BUILTIN_MODES:
                continue
            if mode.startswith(SCRIPT_PREFIX) and mode[len(SCRIPT_PREFIX) :].strip():
                continue
            raise ValueError(
                f"unknown mode {mode!r}: use read-write, read-only, simple-update or "
                "script:PATH (a pgbench script, relative to the suite file)"
            )
        if len(set(modes)) != len(modes):
            raise ValueError("modes must not repeat")
        return modes

    @model_validator(mode="after")
    def _some_combination(self) -> PgbenchOptions:
        if not any(j <= c for c in self.clients for j in self.jobs):
            raise ValueError(
                f"every jobs value ({self.jobs}) exceeds every clients value ({self.clients}); "
                "pgbench cannot run more threads than clients"
            )
        return self


@dataclass(frozen=True)
class Combination:
    mode: str
    clients: int
    jobs: int

    def label(self) -> str:
        return f"mode={self.mode},clients={self.clients},jobs={self.jobs}"

    def slug(self) -> str:
        mode = re.sub(r"[^A-Za-z0-9._-]+", "_", self.mode)
        return f"{mode}-c{self.clients}-j{self.jobs}"
