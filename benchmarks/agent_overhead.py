"""What measuring costs: the sampler's CPU, and the `command` measurement's per-repetition
overhead against running the same command bare (and against hyperfine, when installed).

Targets (issue 2): sampler under 1% of one core; command overhead under 2 ms per repetition.

    .venv/bin/python benchmarks/agent_overhead.py [--repetitions 300] [--sampler-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from perffarm.agent.collectors import collect_environment
from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import MeasurementContext
from perffarm.agent.measurements.command import CommandMeasurement, CommandOptions
from sampler_cost import measure_sampler_cpu


def bare_per_repetition(argv: list[str], repetitions: int) -> float:
    """Seconds per run of posix_spawn + waitpid: the least any tool can spend."""
    executable = shutil.which(argv[0])
    started = time.perf_counter()
    for _ in range(repetitions):
        pid = os.posix_spawn(executable, argv, os.environ)
        os.waitpid(pid, 0)
    return (time.perf_counter() - started) / repetitions


def perffarm_per_repetition(argv: list[str], repetitions: int) -> tuple[float, float]:
    """(seconds per repetition of the whole measurement, median wall_time it recorded)."""
    with tempfile.TemporaryDirectory() as work:
        context = MeasurementContext(
            suite_dir=Path(work), work_dir=Path(work), stop_event=threading.Event()
        )
        options = CommandOptions(command=argv, repeat=repetitions, warmup=0)
        measurement = CommandMeasurement("overhead", options, context)
        experiment = Experiment("overhead")
        measurement.setup(experiment)
        try:
            started = time.perf_counter()
            measurement.start(experiment)
            elapsed = time.perf_counter() - started
            measurement.collect(experiment)
        finally:
            measurement.teardown(experiment)
    wall = next(r for r in experiment.results if r.metric == "wall_time")
    return elapsed / repetitions, statistics.median(wall.samples)


def hyperfine_mean(argv: list[str], repetitions: int) -> float | None:
    if not shutil.which("hyperfine"):
        return None
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        subprocess.run(
            [
                "hyperfine",
                "-N",
                "--warmup",
                "3",
                "--runs",
                str(repetitions),
                "--export-json",
                export.name,
                " ".join(argv),
            ],
            check=True,
            capture_output=True,
        )
        return json.loads(Path(export.name).read_text())["results"][0]["mean"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=300)
    parser.add_argument("--sampler-seconds", type=float, default=20.0)
    args = parser.parse_args()

    env = collect_environment(Path.cwd())
    cpu = env.sections.get("cpu", {})
    print(f"machine: {cpu.get('model')} — {cpu.get('cores')} cores / {cpu.get('threads')} threads")
    print(f"python {sys.version.split()[0]}; repetitions per figure: {args.repetitions}\n")

    argv = ["true"]
    bare = []
    ours, recorded = [], []
    for _ in range(3):  # interleaved, so a noisy moment hurts both sides alike
        bare.append(bare_per_repetition(argv, args.repetitions))
        per_rep, wall = perffarm_per_repetition(argv, args.repetitions)
        ours.append(per_rep)
        recorded.append(wall)
    bare_s, ours_s = min(bare), min(ours)
    overhead_ms = (ours_s - bare_s) * 1000
    print("command measurement overhead (command: `true`)")
    print(f"  bare posix_spawn + waitpid     {bare_s * 1e3:8.3f} ms per run")
    print(
        f"  perffarm command measurement   {ours_s * 1e3:8.3f} ms per repetition "
        "(wall, user, sys, max RSS, output files, metric parsing)"
    )
    print(f"  wall_time perffarm recorded    {min(recorded) * 1e3:8.3f} ms (median of samples)")
    print(
        f"  overhead                       {overhead_ms:8.3f} ms per repetition "
        f"(target < 2 ms: {'met' if overhead_ms < 2 else 'NOT met'})"
    )
    hyperfine = hyperfine_mean(argv, args.repetitions)
    if hyperfine is not None:
        print(
            f"  hyperfine -N mean              {hyperfine * 1e3:8.3f} ms per run; "
            f"perffarm's recorded wall_time / hyperfine = {min(recorded) / hyperfine:.2f}"
        )
    else:
        print("  hyperfine                      not installed (apt-get install hyperfine)")

    print(f"\nsampler CPU cost ({args.sampler_seconds:g} s at 1 Hz)")
    cost = measure_sampler_cpu(seconds=args.sampler_seconds, interval=1.0)
    print(
        f"  {cost['samples']} samples, {cost['sampler_thread_cpu_s'] * 1e3:.2f} ms CPU: "
        f"{cost['percent_of_one_core']:.3f}% of one core (target < 1%: "
        f"{'met' if cost['percent_of_one_core'] < 1 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
