"""How fast ``compare_runs`` compares two runs of 5,000 results each.

Usage::

    .venv/bin/python benchmarks/compare_speed.py [--results 5000] [--repeat 5] [--no-old]

Prints the machine, then for several sample sizes per side (10 a side as the compare page
benchmark stores them, 5, 11, 20, 30, and a mix of 5 to 30) the CPU time of
``compare_runs`` (median and best of ``--repeat`` calls, after a warm-up call). When the
modules differ from git's HEAD (``git show``, read only), HEAD's version is timed too, its
calls interleaved with the new ones so that both see the same load (a busy machine moves
the absolute figures by tens of percent within minutes; the ratio moves much less), and
the verdicts compared; HEAD's one-by-one Monte-Carlo version (2,000 resamples), if that is
what it has, is timed once per size (it takes seconds). Then one pair of 600, 10,000 and
100,000 samples a side (HEAD's failure named when it has one). The targets, in CPU time for 2 ×
5,000 results: 10 samples a side under 120 ms, 30 under 200 ms, mixed 5 to 30 under 300 ms.
"""

from __future__ import annotations

import argparse
import importlib
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

# CPU seconds per size label that compare_runs must stay under (the median of the calls).
TARGETS = {"10": 0.120, "30": 0.200, "5 to 30, mixed": 0.300}


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


def old_module() -> tuple[ModuleType, bool] | None:
    """The comparison as git's HEAD has it, if it differs from the working tree; and whether
    it is the (slow) one-by-one Monte-Carlo version.

    HEAD's ``perffarm/analysis`` modules are loaded as a package of their own
    (``perffarm_head_analysis``, their imports of each other renamed), so that HEAD's
    ``compare`` uses HEAD's rank tests and bootstrap, not the working tree's.
    """
    root = Path(__file__).resolve().parent.parent
    folder = "src/perffarm/analysis"

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout

    try:
        names = [
            Path(line).name for line in git("ls-tree", "--name-only", "HEAD", f"{folder}/").split()
        ]
        sources = {
            name: git("show", f"HEAD:{folder}/{name}") for name in names if name.endswith(".py")
        }
    except (OSError, subprocess.CalledProcessError):
        return None
    here = Path(compare.__file__).parent
    current = {path.name: path.read_text(encoding="utf-8") for path in here.glob("*.py")}
    if sources == current:
        return None
    package = "perffarm_head_analysis"
    directory = Path(tempfile.mkdtemp()) / package
    directory.mkdir()
    for name, source in sources.items():
        source = source.replace("from perffarm.analysis import", f"from {package} import")
        source = source.replace("perffarm.analysis.", f"{package}.")
        (directory / name).write_text(source, encoding="utf-8")
    sys.path.insert(0, str(directory.parent))
    try:
        module = importlib.import_module(f"{package}.compare")
    finally:
        sys.path.remove(str(directory.parent))
    return module, "_resampled_medians" in sources.get("compare.py", "")


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
    parser.add_argument("--no-old", action="store_true", help="skip git HEAD's version")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"results: {args.results:,} per run (2 runs); every tenth result 5% slower\n")
    found = None if args.no_old else old_module()
    if found is None and not args.no_old:
        print("(the module is as git's HEAD has it: new method only)\n")
    old, slow = found if found is not None else (None, False)
    ok = True
    header = f"{'samples per side':<18}{'new: median CPU':>17}{'best':>10}"
    if old is not None:
        header += f"{'HEAD: median':>14}{'best':>9}{'speed-up':>10}"
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
        new_items = compare.compare_runs(baseline, contender)  # warm caches (weights, tables)
        times, old_times = [], []
        if old is not None and not slow:
            old.compare_runs(baseline, contender)
        for _ in range(args.repeat):
            times += cpu_time(lambda a=baseline, b=contender: compare.compare_runs(a, b), 1)
            if old is not None and not slow:
                old_times += cpu_time(lambda a=baseline, b=contender: old.compare_runs(a, b), 1)
        if old is not None and slow:
            old_times = cpu_time(lambda a=baseline, b=contender: old.compare_runs(a, b), 1)
        median = statistics.median(times)
        line = f"{label:<18}{median * 1000:>14.0f} ms{min(times) * 1000:>7.0f} ms"
        if label in TARGETS:
            met = median < TARGETS[label]
            ok &= met
        if old is not None:
            old_median = statistics.median(old_times)
            line += (
                f"{old_median * 1000:>11.0f} ms{min(old_times) * 1000:>6.0f} ms"
                f"{old_median / median:>9.1f}×"
            )
            old_items = old.compare_runs(baseline, contender)
            same = sum(
                a.to_dict() == b.to_dict() for a, b in zip(new_items, old_items, strict=True)
            )
            line += f"   same result: {same}/{len(new_items)}"
        if label in TARGETS:
            line += f"   target {TARGETS[label] * 1000:.0f} ms: {'met' if met else 'NOT met'}"
        print(line)
    print("\none pair of large samples (compare_samples, CPU time of one call)")
    for n in (600, 10_000, 100_000):
        rng = np.random.default_rng(n)
        pair = (rng.lognormal(0, 0.05, n).tolist(), rng.lognormal(0.05, 0.05, n).tolist())
        (seconds,) = cpu_time(lambda p=pair: compare.compare_samples(*p), 1)
        line = f"{n:>7,} a side: {seconds * 1000:>8.0f} ms"
        if old is not None and not slow:
            try:
                (old_seconds,) = cpu_time(lambda p=pair: old.compare_samples(*p), 1)
                line += f"   HEAD: {old_seconds * 1000:.0f} ms"
            except (OverflowError, MemoryError) as exc:
                line += f"   HEAD: {type(exc).__name__}"
        print(line)
    print(
        f"\ntargets for 2 × {args.results:,} results (median CPU): "
        + ", ".join(f"{label} a side < {t * 1000:.0f} ms" for label, t in TARGETS.items())
        + f": {'all met' if ok else 'NOT all met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
