"""A third-party measurement: fails on request in any phase and leaves marker files."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field

from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import Measurement, MeasurementOptions


class FragileOptions(MeasurementOptions):
    fail_in: str | None = Field(default=None, description="Phase that raises.")
    marker_dir: str
    step_seconds: float = 0.0
    steps: int = 3
    break_result: bool = Field(
        default=False, description="Spoil the result after the API checked it (a NaN sample)."
    )


class FragileMeasurement(Measurement):
    """Records one sample per step, can fail in a chosen phase, and leaves marker files."""

    type_name = "fragile"
    Options = FragileOptions
    options: FragileOptions

    def _mark(self, phase: str) -> None:
        Path(self.options.marker_dir, f"{self.name}.{phase}").touch()

    def _maybe_fail(self, phase: str) -> None:
        self._mark(phase)
        if self.options.fail_in == phase:
            raise RuntimeError(f"{phase} broke on purpose")

    def setup(self, experiment: Experiment) -> None:
        self.samples: list[float] = []
        self._maybe_fail("setup")

    def start(self, experiment: Experiment) -> None:
        experiment.progress.set_total(self.options.steps)
        for step in range(self.options.steps):
            if self.context.stop_event.is_set():
                break
            started = time.perf_counter()
            time.sleep(self.options.step_seconds)
            self.samples.append(time.perf_counter() - started + step * 0.0)
            self._mark(f"step{step}")
            experiment.progress.advance()
        self._maybe_fail("start")

    def collect(self, experiment: Experiment) -> None:
        result = experiment.add_result("step_time", self.samples, unit="s")
        if self.options.break_result:
            result.samples.append(float("nan"))
        experiment.add_attachment("collected.txt", "collected before failing")
        self._maybe_fail("collect")

    def teardown(self, experiment: Experiment) -> None:
        self._maybe_fail("teardown")
