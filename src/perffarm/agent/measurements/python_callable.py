"""The ``python`` measurement: time a Python callable, keeping every sample.

Like timeit, each sample times ``number`` calls in a loop and divides, so that calls shorter
than the clock's resolution are still measured; unlike timeit, every sample is kept. When
``number`` is not given it is calibrated so one sample lasts at least ``min_sample_time``.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import Measurement, MeasurementOptions


class PythonOptions(MeasurementOptions):
    callable: str = Field(
        description="`module:function` or `path/to/file.py:function` (relative to the suite)."
    )
    setup: str | None = Field(
        default=None,
        description="Callable run once before timing; its return value is passed "
        "to the timed callable as its only argument.",
    )
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    number: int | None = Field(default=None, ge=1, description="Calls per sample.")
    min_sample_time: float = Field(default=0.05, gt=0, le=60)
    disable_gc: bool = Field(default=True, description="As timeit does, while a sample runs.")


class PythonMeasurement(Measurement):
    type_name = "python"
    Options = PythonOptions
    options: PythonOptions

    def setup(self, experiment: Experiment) -> None:
        function = load_callable(self.options.callable, self.context.suite_dir)
        args, kwargs = list(self.options.args), dict(self.options.kwargs)
        if self.options.setup:
            prepared = load_callable(self.options.setup, self.context.suite_dir)()
            args = [prepared, *args]
        self._call: Callable[[], Any] = lambda: function(*args, **kwargs)
        self._samples: list[float] = []
        self._warmups: list[float] = []

    def start(self, experiment: Experiment) -> None:
        number = self.options.number or self._calibrate()
        self._number = number
        experiment.progress.set_total(self.warmup + self.repeat)
        for index in range(self.warmup + self.repeat):
            if self.context.stop_event.is_set():
                break
            elapsed = self._time(number) / number
            (self._warmups if index < self.warmup else self._samples).append(elapsed)
            experiment.progress.advance()

    def collect(self, experiment: Experiment) -> None:
        if self._samples:
            # `number` is calibrated, so it goes in `extra`, not in the params that name
            # the series: a different calibration must not start a new series.
            experiment.add_result(
                "time",
                self._samples,
                unit="s",
                warmup_samples=self._warmups,
                extra={"calls_per_sample": self._number},
            )

    def _time(self, number: int) -> float:
        call = self._call
        gc_was_enabled = gc.isenabled()
        if self.options.disable_gc:
            gc.disable()
        try:
            started = time.perf_counter()
            for _ in range(number):
                call()
            return time.perf_counter() - started
        finally:
            if gc_was_enabled:
                gc.enable()

    def _calibrate(self) -> int:
        number = 1
        while True:
            if self._time(number) >= self.options.min_sample_time or number >= 10**9:
                return number
            number *= 10 if number < 1000 else 2


def load_callable(spec: str, base: Path) -> Callable[..., Any]:
    """Import ``module:attr`` or ``file.py:attr``; errors say what is missing."""
    target, sep, attribute = spec.partition(":")
    if not sep or not attribute:
        raise ValueError(f"{spec!r}: write it as module:function or file.py:function")
    if target.endswith(".py"):
        path = Path(target)
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise ValueError(f"{spec!r}: no such file {path}")
        module_name = f"perffarm_suite_{path.stem}"
        loaded = importlib.util.spec_from_file_location(module_name, path)
        if loaded is None or loaded.loader is None:
            raise ValueError(f"{spec!r}: cannot import {path}")
        module = importlib.util.module_from_spec(loaded)
        sys.modules[module_name] = module
        loaded.loader.exec_module(module)
    else:
        if str(base) not in sys.path:
            sys.path.insert(0, str(base))
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ValueError(f"{spec!r}: cannot import {target}: {exc}") from None
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ValueError(f"{spec!r}: {target} has no {attribute!r}") from None
    if not callable(value):
        raise ValueError(f"{spec!r} is not callable")
    return value
