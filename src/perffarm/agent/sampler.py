"""Whole-machine resource use during a run, sampled in the background as the run's series.

A daemon thread wakes every ``interval`` seconds and records system CPU %, memory used
(bytes and %), disk read/write and network sent/received rates. Rates are deltas of
psutil's cumulative counters divided by the time between two samples, so a late wake-up
does not distort them. CPU % is computed from ``psutil.cpu_times()`` deltas kept here,
not ``psutil.cpu_percent()``, whose state is shared by every caller in the process.

Cost: one sample reads /proc/stat, /proc/meminfo, /proc/diskstats and /proc/net/dev; see
``benchmarks/sampler_cost.py`` for the measured figure.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

import psutil

from perffarm.model import Series

CPU_PERCENT = "cpu.percent"
MEMORY_USED = "memory.used"
MEMORY_PERCENT = "memory.percent"
DISK_READ = "disk.read"
DISK_WRITE = "disk.write"
NET_SENT = "net.sent"
NET_RECEIVED = "net.received"

UNITS = {
    CPU_PERCENT: "%",
    MEMORY_USED: "bytes",
    MEMORY_PERCENT: "%",
    DISK_READ: "bytes/s",
    DISK_WRITE: "bytes/s",
    NET_SENT: "bytes/s",
    NET_RECEIVED: "bytes/s",
}


class _Counters(NamedTuple):
    """Cumulative readings; one sample is the difference between two of these."""

    monotonic: float
    cpu_busy: float
    cpu_total: float
    disk_read: int | None
    disk_write: int | None
    net_sent: int | None
    net_received: int | None


@dataclass
class _Points:
    t: list[float]
    values: dict[str, list[float | None]]


class ResourceSampler:
    """Samples the machine's resources from start() until stop(); usable as ``with``.

    ``t0`` is the run's start in epoch seconds, so the series' times line up with the run;
    it defaults to the moment ``start()`` is called.
    """

    def __init__(self, interval: float = 1.0, t0: float | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.interval = interval
        self.t0 = t0
        self.thread_cpu_seconds = 0.0
        """CPU time the sampling thread used, known after stop()."""
        self.samples = 0
        self.last_error: str | None = None
        """The latest failure of a sample (the tick is skipped, sampling goes on)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._points = _Points(t=[], values={name: [] for name in UNITS})
        self._series: list[Series] | None = None
        self._epoch_start = 0.0

    def start(self) -> ResourceSampler:
        if self._thread is not None:
            raise RuntimeError("this ResourceSampler was already started")
        if self.t0 is None:
            self.t0 = time.time()
        self._epoch_start = self.t0
        previous = _read_counters()
        self._thread = threading.Thread(
            target=self._sample_until_stopped,
            args=(previous,),
            name="perffarm-resource-sampler",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> list[Series]:
        """Stop sampling at once and return the series (empty if no sample was taken)."""
        if self._series is not None:
            return self._series
        if self._thread is None:
            raise RuntimeError("stop() called before start()")
        self._stop.set()
        self._thread.join()
        self._series = self._build_series()
        return self._series

    def __enter__(self) -> ResourceSampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def series(self) -> list[Series]:
        """The series after stop(); read them here when the sampler was used with ``with``."""
        if self._series is None:
            raise RuntimeError("the series are known after stop()")
        return self._series

    def _sample_until_stopped(self, previous: _Counters) -> None:
        next_tick = previous.monotonic + self.interval
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            previous = self._sample(previous)
            next_tick += self.interval
            # After a suspend or a long stall, resume the rhythm instead of catching up.
            if next_tick < time.monotonic():
                next_tick = time.monotonic() + self.interval
        # A final partial interval, unless the last sample was just taken.
        if time.monotonic() - previous.monotonic >= self.interval / 2:
            self._sample(previous)
        self.thread_cpu_seconds = time.thread_time()

    def _sample(self, previous: _Counters) -> _Counters:
        try:
            current = _read_counters()
            memory = psutil.virtual_memory()
        except Exception as exc:  # a transient /proc read failure must not end the thread
            self.last_error = f"{type(exc).__name__}: {exc}"
            return previous
        elapsed = current.monotonic - previous.monotonic
        if elapsed <= 0:
            return previous
        cpu_total = current.cpu_total - previous.cpu_total
        cpu_percent = (
            100.0 * (current.cpu_busy - previous.cpu_busy) / cpu_total if cpu_total else 0.0
        )
        sample = {
            CPU_PERCENT: min(100.0, max(0.0, cpu_percent)),
            MEMORY_USED: float(memory.used),
            MEMORY_PERCENT: float(memory.percent),
            DISK_READ: _rate(previous.disk_read, current.disk_read, elapsed),
            DISK_WRITE: _rate(previous.disk_write, current.disk_write, elapsed),
            NET_SENT: _rate(previous.net_sent, current.net_sent, elapsed),
            NET_RECEIVED: _rate(previous.net_received, current.net_received, elapsed),
        }
        self._points.t.append(round(time.time() - self._epoch_start, 6))
        for name, value in sample.items():
            self._points.values[name].append(value)
        self.samples += 1
        return current

    def _build_series(self) -> list[Series]:
        if not self._points.t:
            return []
        series = []
        for name, values in self._points.values.items():
            # Machines without block devices or NICs have no counters: leave those series out.
            known = [value for value in values if value is not None]
            if len(known) != len(values):
                continue
            series.append(Series(name=name, unit=UNITS[name], t=list(self._points.t), values=known))
        return series


def _read_counters() -> _Counters:
    cpu = psutil.cpu_times()
    disk = psutil.disk_io_counters()
    net = psutil.net_io_counters()
    busy, total = _cpu_busy_and_total(cpu)
    return _Counters(
        monotonic=time.monotonic(),
        cpu_busy=busy,
        cpu_total=total,
        disk_read=disk.read_bytes if disk else None,
        disk_write=disk.write_bytes if disk else None,
        net_sent=net.bytes_sent if net else None,
        net_received=net.bytes_recv if net else None,
    )


def _cpu_busy_and_total(times: Any) -> tuple[float, float]:
    total = sum(times)
    # Linux counts guest time inside user and nice as well: do not count it twice.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _rate(before: int | None, after: int | None, seconds: float) -> float | None:
    if before is None or after is None:
        return None
    # Counters can go backwards when a device disappears; a negative rate would be a lie.
    return max(0, after - before) / seconds
