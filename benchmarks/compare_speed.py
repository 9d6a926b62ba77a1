"""How fast ``compare_runs`` compares two runs of 5,000 results each.

Usage::

    .venv/bin/python benchmarks/compare_speed.py [--results 5000] [--repeat 5] [--no-old]

Prints the machine, then for several sample sizes per side (10 a side as the compare page
benchmark stores them, 5, 11, 20, 30, and a mix of 5 to 30) the CPU time of
``compare_runs`` (the median of ``--repeat`` calls, after a warm-up call). The old method,
one comparison after another with a 2,000-resample Monte-Carlo bootstrap, is the module as
git's HEAD has it (``git show``, read only), when that version still has the loop: it is
timed once per size (it takes seconds) and the ratio printed. The target: well under 200
ms of CPU for 2 × 5,000 results.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from perffarm.analysis import compare
from perffarm.model import Result, RunDocument

TARGET = 0.200


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
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, load average {load:.1f}"
    )


def documents(results: int, sizes: tuple[int, int], seed: int = 9) -> tuple[RunDocument, ...]:
    """Two runs as the compare page benchmark makes them: every tenth result 5% slower."""
    rng = np.random.default_rng(seed)
    sides = []
    for side in range(2):
        items = []
        for i in range(results):
            n = int(rng.integers(sizes[0], sizes[1] + 1))
            shift = 0.05 if (side and i % 10 == 0) else 0.0
            samples = [float(v) for v in 10 + (i % 97) + shift * 10 + rng.normal(0, 0.05, n)]
            items.append(
                Result(
                    benchmark=f"suite.bench{i // 10}",
                    params={"size": i % 10},
                    metric="wall",
                    unit="s",
                    samples=samples,
                )
            )
        sides.append(RunDocument(project="compare", machine="compare-0", results=items))
    return tuple(sides)


def old_module() -> ModuleType | None:
    """compare.py as committed, if it is still the one-by-one Monte-Carlo version."""
    root = Path(__file__).resolve().parent.parent
    try:
        source = subprocess.run(
            ["git", "show", "HEAD:src/perffarm/analysis/compare.py"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    if "_resampled_medians" not in source:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location("perffarm_compare_old", handle.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    os.unlink(handle.name)
    return module


def cpu_time(call, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.process_time()
        call()
        times.append(time.process_time() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-old", action="store_true", help="skip the old method (slow)")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"results: {args.results:,} per run (2 runs); every tenth result 5% slower\n")
    old = None if args.no_old else old_module()
    if old is None and not args.no_old:
        print("(the old one-by-one method is not in git's HEAD any more: new method only)\n")
    ok = True
    header = f"{'samples per side':<18}{'new: median CPU':>17}{'best':>10}"
    if old is not None:
        header += f"{'old (1 run)':>14}{'speed-up':>10}"
    print(header)
    for label, sizes in (
        ("10", (10, 10)),
        ("5", (5, 5)),
        ("11", (11, 11)),
        ("20", (20, 20)),
        ("30", (30, 30)),
        ("5 to 30, mixed", (5, 30)),
    ):
        baseline, contender = documents(args.results, sizes)
        new_items = compare.compare_runs(baseline, contender)  # warm caches (weights, U tables)
        times = cpu_time(lambda a=baseline, b=contender: compare.compare_runs(a, b), args.repeat)
        median = statistics.median(times)
        line = f"{label:<18}{median * 1000:>14.0f} ms{min(times) * 1000:>7.0f} ms"
        if sizes == (10, 10):
            ok &= median < TARGET
        if old is not None:
            old_time = cpu_time(lambda a=baseline, b=contender: old.compare_runs(a, b), 1)[0]
            line += f"{old_time * 1000:>11.0f} ms{old_time / median:>9.0f}×"
            old_items = old.compare_runs(baseline, contender)
            same = sum(
                a.verdict.value == b.verdict.value
                for a, b in zip(new_items, old_items, strict=True)
            )
            line += f"   same verdict: {same}/{len(new_items)}"
        print(line)
    print(
        f"\ntarget: 2 × {args.results:,} results of 10 samples a side in under "
        f"{TARGET * 1000:.0f} ms of CPU: {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
