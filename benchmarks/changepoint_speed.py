"""How fast perffarm finds change points: a whole history, and one new point on top of it.

Usage::

    .venv/bin/python benchmarks/changepoint_speed.py [--points 10000] [--repeat 5]

Targets (issue 6): the change points of a 10,000-point series in under 0.5 s; the
incremental update after one new point in under 10 ms. Prints the machine it ran on, the
median and the worst of the repetitions; exits 1 when a median misses its target.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from perffarm.analysis.changepoint import ChangePointState, detect, update
from perffarm.analysis.compare import compare_samples

FULL_TARGET = 0.5
INCREMENTAL_TARGET = 0.010


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def history(points: int, seed: int = 0) -> np.ndarray:
    """A benchmark-like history: a step every ~500 points, 1% noise, some outliers."""
    rng = np.random.default_rng(seed)
    level = 100 * np.cumprod(np.where(rng.random(points) < 1 / 500, rng.choice([0.9, 1.1]), 1.0))
    values = level * (1 + rng.normal(0, 0.01, points))
    outliers = rng.choice(points, size=points // 100, replace=False)
    values[outliers] *= 1.5
    return values


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="full detections to time")
    parser.add_argument("--updates", type=int, default=50, help="one-point updates to time")
    args = parser.parse_args()
    values = history(args.points + args.updates)
    base = values[: args.points]
    print(f"machine: {machine()}")
    print(f"series: {args.points} points\n")

    detect(base[:500])  # warm caches and imports outside the measurement
    full = timed(lambda: detect(base), args.repeat)
    found = len(detect(base))

    state = ChangePointState.from_values(base)
    incremental = []
    for extra in values[args.points :]:
        started = time.perf_counter()
        update(state, [extra])
        incremental.append(time.perf_counter() - started)
    assert state.change_points == detect(values[: args.points + args.updates])

    rng = np.random.default_rng(1)
    pairs = [(rng.normal(100, 2, 10), rng.normal(103, 2, 10)) for _ in range(500)]
    started = time.perf_counter()
    for baseline, contender in pairs:
        compare_samples(baseline, contender)
    per_comparison = (time.perf_counter() - started) / len(pairs)

    ok = True
    for name, times, target in (
        ("full detection", full, FULL_TARGET),
        ("update after one new point", incremental, INCREMENTAL_TARGET),
    ):
        median = statistics.median(times)
        met = median < target
        ok &= met
        print(
            f"{name:<28} median {median * 1000:8.2f} ms   90th percentile "
            f"{np.percentile(times, 90) * 1000:8.2f} ms   "
            f"target < {target * 1000:.0f} ms: {'met' if met else 'NOT MET'}"
        )
    print(f"{'':<28} ({found} change points found)")
    print(
        f"{'comparison of 10 + 10':<28} {per_comparison * 1000:8.2f} ms each "
        f"(5,000 comparisons: {per_comparison * 5000:.1f} s)"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
