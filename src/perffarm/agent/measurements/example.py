"""The ``example`` measurement: a small, complete template for writing your own.

Copy this file into your own package, rename the class, and register it in your
``pyproject.toml``::

    [project.entry-points."perffarm.measurements"]
    mything = "mypackage.mything:MyThingMeasurement"

Then a suite can say ``type: mything``. See docs/writing-a-measurement.md.

This one measures how long it takes to sort a list of random numbers, with the list size
as a parameter, so that a suite shows one result per size.
"""

from __future__ import annotations

import random
import time

from pydantic import Field

from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import Measurement, MeasurementOptions


class ExampleOptions(MeasurementOptions):
    # Every key a suite may set is declared here; any other key is reported as a typo,
    # with its file and line, before the run starts.
    sizes: list[int] = Field(default=[1_000, 10_000], min_length=1)
    seed: int = 42


class ExampleMeasurement(Measurement):
    type_name = "example"
    Options = ExampleOptions
    options: ExampleOptions  # narrows the type for editors and type checkers

    def setup(self, experiment: Experiment) -> None:
        # Prepare outside the timed part: build the inputs once.
        rng = random.Random(self.options.seed)
        self.inputs = {size: [rng.random() for _ in range(size)] for size in self.options.sizes}
        self.timings: dict[int, list[float]] = {size: [] for size in self.options.sizes}

    def start(self, experiment: Experiment) -> None:
        # The measured work. `self.repeat` and `self.warmup` come from the suite (or its
        # defaults); the progress bar advances once per timed call.
        experiment.progress.set_total(len(self.inputs) * (self.warmup + self.repeat))
        for size, values in self.inputs.items():
            for index in range(self.warmup + self.repeat):
                if self.context.stop_event.is_set():  # Ctrl-C: stop early, keep what we have
                    return
                started = time.perf_counter()
                sorted(values)
                elapsed = time.perf_counter() - started
                if index >= self.warmup:
                    self.timings[size].append(elapsed)
                experiment.progress.advance()

    def collect(self, experiment: Experiment) -> None:
        # One result per size: every sample is kept; perffarm computes the statistics.
        table = experiment.create_table(["size", "samples", "best_s"])
        for size, samples in self.timings.items():
            if not samples:
                continue
            experiment.add_result(
                "sort_time", samples, unit="s", direction="lower", params={"size": size}
            )
            table.add(size, len(samples), min(samples))

    def teardown(self, experiment: Experiment) -> None:
        # Always called, also after a failure or Ctrl-C: release what setup took.
        self.inputs = {}
