"""How much CPU the resource sampler costs while a run measures (target: under 1% of one core).

Runs a ResourceSampler for a while with the main thread asleep and reports the CPU time of
the sampling thread itself (time.thread_time inside it) and, as a cross-check, the whole
process's CPU time over the same span, which then contains little besides the sampler.

    python benchmarks/sampler_cost.py [--seconds 20] [--interval 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from perffarm.agent.collectors import CollectorContext, cpu
from perffarm.agent.sampler import ResourceSampler


def measure_sampler_cpu(seconds: float = 20.0, interval: float = 1.0) -> dict[str, Any]:
    """Run the sampler for ``seconds`` at ``interval`` and return its CPU cost."""
    process_before = time.process_time()
    wall_before = time.monotonic()
    sampler = ResourceSampler(interval=interval).start()
    time.sleep(seconds)
    series = sampler.stop()
    wall = time.monotonic() - wall_before
    process_cpu = time.process_time() - process_before

    machine = cpu.collect(CollectorContext(cwd=Path.cwd()))
    samples = sampler.samples
    return {
        "cpu_model": machine.get("model"),
        "cores": machine.get("cores"),
        "threads": machine.get("threads"),
        "interval_s": interval,
        "duration_s": round(wall, 3),
        "samples": samples,
        "series": len(series),
        "sampler_thread_cpu_s": round(sampler.thread_cpu_seconds, 6),
        "process_cpu_s": round(process_cpu, 6),
        "cpu_ms_per_sample": round(1000 * sampler.thread_cpu_seconds / samples, 3)
        if samples
        else None,
        "percent_of_one_core": round(100 * sampler.thread_cpu_seconds / wall, 4),
        "process_percent_of_one_core": round(100 * process_cpu / wall, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    figures = measure_sampler_cpu(args.seconds, args.interval)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"machine: {figures['cpu_model']}, {figures['cores']} cores / "
        f"{figures['threads']} threads (os.cpu_count={os.cpu_count()})"
    )
    print(
        f"sampler: interval {figures['interval_s']} s for {figures['duration_s']} s, "
        f"{figures['samples']} samples of {figures['series']} series"
    )
    print(
        f"CPU: sampler thread {figures['sampler_thread_cpu_s']:.4f} s "
        f"({figures['cpu_ms_per_sample']} ms/sample) = "
        f"{figures['percent_of_one_core']:.3f}% of one core "
        f"[whole process: {figures['process_cpu_s']:.4f} s = "
        f"{figures['process_percent_of_one_core']:.3f}%] (target < 1%)"
    )


if __name__ == "__main__":
    main()
