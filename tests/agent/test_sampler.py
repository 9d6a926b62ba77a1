"""The resource sampler on this real machine."""

from __future__ import annotations

import time
from collections import namedtuple

import psutil
import pytest

from perffarm.agent.sampler import (
    CPU_PERCENT,
    MEMORY_PERCENT,
    MEMORY_USED,
    UNITS,
    ResourceSampler,
    _cpu_busy_and_total,
    _rate,
)


def _until_sampled(sampler: ResourceSampler, count: int) -> None:
    """Wait (with a deadline, not a fixed time) until ``sampler`` has taken ``count`` samples."""
    deadline = time.monotonic() + 60
    while sampler.samples < count:
        assert time.monotonic() < deadline, f"only {sampler.samples} samples"
        time.sleep(0.01)


def test_sampler_records_aligned_series_with_sane_values() -> None:
    t0 = time.time()
    with ResourceSampler(interval=0.05, t0=t0) as sampler:
        _until_sampled(sampler, 3)
    elapsed = time.time() - t0

    series = {item.name: item for item in sampler.series}
    expected = {CPU_PERCENT, MEMORY_USED, MEMORY_PERCENT, "net.sent", "net.received"}
    if psutil.disk_io_counters() is not None:
        expected |= {"disk.read", "disk.write"}
    assert set(series) == expected

    times = series[CPU_PERCENT].t
    assert len(times) >= 2
    assert all(item.t == times and len(item.values) == len(times) for item in series.values())
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] > 0 and times[-1] <= elapsed
    assert all(item.unit == UNITS[name] for name, item in series.items())

    total_memory = psutil.virtual_memory().total
    assert all(0 <= value <= 100 for value in series[CPU_PERCENT].values)
    assert all(0 <= value <= 100 for value in series[MEMORY_PERCENT].values)
    assert all(0 < value <= total_memory for value in series[MEMORY_USED].values)
    for name in expected - {CPU_PERCENT, MEMORY_USED, MEMORY_PERCENT}:
        assert all(value >= 0 for value in series[name].values), name
    assert sampler.samples == len(times)
    assert sampler.thread_cpu_seconds > 0


def test_sampler_sees_a_busy_cpu() -> None:
    sampler = ResourceSampler(interval=0.05).start()
    deadline = time.monotonic() + 60
    spins = 0
    while sampler.samples < 3:  # spin through whole sampling intervals
        assert time.monotonic() < deadline
        spins += 1
    series = {item.name: item for item in sampler.stop()}

    # This thread never waited, so busy CPU time was counted: how much of the machine that
    # was depends on its other load, which is not this test's business.
    values = series[CPU_PERCENT].values
    assert max(values) > 0 and all(0 <= value <= 100 for value in values)


@pytest.mark.timeout(10)
def test_stop_is_immediate_even_with_a_long_interval() -> None:
    sampler = ResourceSampler(interval=3600).start()
    assert sampler.stop() == []  # nothing sampled yet, nothing waited for
    assert sampler.stop() == []  # stop twice is harmless


def test_times_count_from_the_run_start() -> None:
    run_started = time.time() - 100
    sampler = ResourceSampler(interval=0.02, t0=run_started).start()
    _until_sampled(sampler, 1)
    series = sampler.stop()
    assert series and series[0].t[0] >= 100


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        ResourceSampler(interval=0)
    sampler = ResourceSampler()
    with pytest.raises(RuntimeError, match="before start"):
        sampler.stop()
    with pytest.raises(RuntimeError, match="after stop"):
        _ = sampler.series
    sampler.start()
    with pytest.raises(RuntimeError, match="already started"):
        sampler.start()
    sampler.stop()


def test_rates_and_cpu_share_from_counter_deltas() -> None:
    assert _rate(1_000, 3_000, 2.0) == 1_000.0
    assert _rate(3_000, 1_000, 2.0) == 0.0  # a counter reset is not negative traffic
    assert _rate(None, 1_000, 1.0) is None

    Times = namedtuple("Times", "user nice system idle iowait guest guest_nice")
    busy, total = _cpu_busy_and_total(Times(30.0, 5.0, 15.0, 40.0, 10.0, 4.0, 1.0))
    # guest time is already inside user/nice; iowait is idle.
    assert (busy, total) == (50.0, 100.0)
