"""A measurement type: how long sha256 takes over a buffer of the size a suite asks for."""

from __future__ import annotations

import hashlib
import time

from pydantic import Field

from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import Measurement, MeasurementOptions


class ChecksumOptions(MeasurementOptions):  # `repeat` and `warmup` are inherited
    megabytes: int = Field(default=16, ge=1)


class ChecksumMeasurement(Measurement):
    type_name = "checksum"
    Options = ChecksumOptions
    options: ChecksumOptions

    def setup(self, experiment: Experiment) -> None:
        self.data = bytes(self.options.megabytes * 2**20)  # not measured
        self.samples: list[float] = []

    def start(self, experiment: Experiment) -> None:
        for index in range(self.warmup + self.repeat):
            if self.context.stop_event.is_set():  # Ctrl-C: keep what was measured
                return
            started = time.perf_counter()
            hashlib.sha256(self.data).digest()
            if index >= self.warmup:
                self.samples.append(time.perf_counter() - started)

    def collect(self, experiment: Experiment) -> None:
        experiment.add_result(
            "sha256_time", self.samples, unit="s", params={"megabytes": self.options.megabytes}
        )

    def teardown(self, experiment: Experiment) -> None:
        self.data = b""  # always called, also after a failure or Ctrl-C
