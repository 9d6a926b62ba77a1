"""The measurement plug-in contract.

A measurement is a class with an ``Options`` pydantic model (its keys in the suite YAML,
checked before anything runs) and the lifecycle ``setup -> start -> stop -> collect``, with
``teardown`` always called last, whatever happened before. Built-ins are registered through
the ``perffarm.measurements`` entry point group exactly as a third party's would be, and
loaded through the one plug-in registry (``perffarm.plugins``, group ``MEASUREMENTS``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict, Field

from perffarm import plugins
from perffarm.agent.experiment import Experiment


class MeasurementOptions(BaseModel):
    """Base of every measurement's options: unknown keys are mistakes, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    repeat: int | None = Field(default=None, ge=1)
    warmup: int | None = Field(default=None, ge=0)


@dataclass
class MeasurementContext:
    """What the runner tells a measurement about the run it is part of."""

    suite_dir: Path
    work_dir: Path
    default_repeat: int = 5
    default_warmup: int = 1
    # From the command line (--repeat/--warmup): wins over the measurement's own setting.
    repeat_override: int | None = None
    warmup_override: int | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    render: Any = None  # callable(str) -> str expanding {{ secure.x }} and friends
    stop_event: threading.Event = field(default_factory=threading.Event)

    def expand(self, text: str) -> str:
        """Fill ``{{ ... }}`` placeholders; the result may hold secrets: never record it."""
        return self.render(text) if self.render else text


class Measurement:
    """Base class; override the phases you need. Each phase gets the same Experiment."""

    type_name: ClassVar[str] = ""
    Options: ClassVar[type[MeasurementOptions]] = MeasurementOptions

    def __init__(self, name: str, options: MeasurementOptions, context: MeasurementContext):
        self.name = name
        self.options = options
        self.context = context

    @property
    def repeat(self) -> int:
        """Repetitions: --repeat, else the measurement's own, else the suite's."""
        for value in (self.context.repeat_override, self.options.repeat):
            if value is not None:
                return value
        return self.context.default_repeat

    @property
    def warmup(self) -> int:
        for value in (self.context.warmup_override, self.options.warmup):
            if value is not None:
                return value
        return self.context.default_warmup

    def setup(self, experiment: Experiment) -> None:
        """Prepare (create files, start servers); not measured."""

    def start(self, experiment: Experiment) -> None:
        """Begin the measured work; may do all of it for a synchronous workload."""

    def stop(self, experiment: Experiment) -> None:
        """End the measured work."""

    def collect(self, experiment: Experiment) -> None:
        """Turn what was measured into results, tables and attachments."""

    def teardown(self, experiment: Experiment) -> None:
        """Always runs, after success, failure or Ctrl-C: release what setup took."""


#: The one error of plug-in loading; the old name, kept for the callers that use it.
UnknownMeasurementType = plugins.PluginError


def measurement_type_names() -> list[str]:
    """Every installed measurement type, built-in or third-party."""
    return plugins.names(plugins.MEASUREMENTS)


def load_measurement_type(name: str) -> type[Measurement]:
    """The measurement class registered as ``name``; PluginError when unknown or broken."""
    return cast(type[Measurement], plugins.load(plugins.MEASUREMENTS, name))
