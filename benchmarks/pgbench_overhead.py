"""Does measuring pgbench through perffarm change what pgbench measures?

Interleaves two ways of getting one tps figure, with the same cluster settings, scale and
pgbench command:

  A  perffarm: the ``pgbench`` measurement's whole lifecycle (private cluster, ``-i``, one
     run, parsing, results, teardown), as ``perffarm run`` drives it;
  B  bare: a cluster with the same settings, ``pgbench -i`` and the same pgbench command
     run with ``subprocess.run``, its tps read with one regular expression.

Pairs alternate their order (A B, B A, A B, ...) so that a drift of the machine during the
benchmark falls on both sides. Prints both medians, the ratio A/B with a 95% confidence
interval from the paired log-ratios, and whether the difference is within noise (the
interval contains 1).

    python benchmarks/pgbench_overhead.py [--pairs 5] [--duration 5] [--mode read-only]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from scipy import stats

from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import MeasurementContext
from perffarm.agent.measurements.pgbench import BUILTIN_MODES, PgbenchMeasurement
from perffarm.agent.pgcluster import PrivateCluster

_TPS = re.compile(r"^tps = ([0-9.]+) \((?:without initial|excluding)", re.MULTILINE)


def via_perffarm(options: dict[str, Any], work: Path) -> float:
    measurement = PgbenchMeasurement(
        "overhead",
        PgbenchMeasurement.Options(**options, repeat=1, warmup=0),
        MeasurementContext(suite_dir=work, work_dir=work),
    )
    experiment = Experiment("overhead")
    try:
        for phase in ("setup", "start", "stop", "collect"):
            getattr(measurement, phase)(experiment)
    finally:
        measurement.teardown(experiment)
    (tps,) = [r for r in experiment.results if r.metric == "tps"]
    return tps.samples[0]


def bare(options: dict[str, Any]) -> float:
    mode, clients, jobs = options["modes"][0], options["clients"], options["jobs"]
    with PrivateCluster(options.get("bin_dir"), options["settings"]) as cluster:
        cluster.create_database("pgbench")
        conn = cluster.connection("pgbench")
        pgbench = str(cluster.bin_dir / "pgbench")
        env = cluster.client_env()
        subprocess.run(
            [pgbench, *conn.pg_args(), "-i", "-s", str(options["scale"]), "pgbench"],
            env=env,
            check=True,
            capture_output=True,
        )
        # The very command the measurement runs (see PgbenchMeasurement.pgbench_argv).
        argv = [
            pgbench,
            *conn.pg_args(),
            "-T",
            str(options["duration"]),
            "-c",
            str(clients),
            "-j",
            str(jobs),
            "-M",
            "simple",
            "-r",
            "-P",
            "1",
            "--progress-timestamp",
            *BUILTIN_MODES[mode],
            "pgbench",
        ]
        proc = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    match = _TPS.search(proc.stdout)
    if not match:
        raise SystemExit(f"no tps line in pgbench's output:\n{proc.stdout}\n{proc.stderr}")
    return float(match.group(1))


def machine(bin_dir: str | None) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with PrivateCluster(bin_dir) as cluster:
        version = cluster.version()
    return {
        "cpu": cpu,
        "cores": psutil.cpu_count(logical=False),
        "threads": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per pgbench run")
    parser.add_argument("--mode", choices=sorted(BUILTIN_MODES), default="read-only")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--bin-dir", default=None)
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="postgresql.conf setting for both sides (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    settings = dict(item.split("=", 1) for item in args.setting) or {"shared_buffers": "128MB"}
    options = {
        "scale": args.scale,
        "clients": args.clients,
        "jobs": args.jobs,
        "modes": [args.mode],
        "duration": args.duration,
        "settings": settings,
        "bin_dir": args.bin_dir,
    }
    about = machine(args.bin_dir)
    if not args.json:
        print("machine:", json.dumps(about))
        print("settings:", json.dumps({k: v for k, v in options.items() if v is not None}))
    a: list[float] = []
    b: list[float] = []
    with tempfile.TemporaryDirectory(prefix="perffarm-overhead-") as tmp:
        for pair in range(args.pairs):
            order = ("A", "B") if pair % 2 == 0 else ("B", "A")
            for side in order:
                started = time.monotonic()
                if side == "A":
                    a.append(via_perffarm(options, Path(tmp)))
                else:
                    b.append(bare(options))
                if not args.json:
                    value = a[-1] if side == "A" else b[-1]
                    print(
                        f"  pair {pair + 1} {side}: {value:10.1f} tps "
                        f"({time.monotonic() - started:.1f} s)",
                        flush=True,
                    )

    logs = [math.log(x / y) for x, y in zip(a, b, strict=True)]
    mean = statistics.fmean(logs)
    if len(logs) > 1:
        half = stats.t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    else:
        half = math.inf
    low, high = math.exp(mean - half), math.exp(mean + half)
    result = {
        "machine": about,
        "options": options,
        "perffarm_tps": a,
        "bare_tps": b,
        "perffarm_median": statistics.median(a),
        "bare_median": statistics.median(b),
        "ratio_of_medians": statistics.median(a) / statistics.median(b),
        "paired_ratio": math.exp(mean),
        "paired_ratio_ci95": [low, high],
        "perffarm_cv": statistics.stdev(a) / statistics.fmean(a) if len(a) > 1 else None,
        "bare_cv": statistics.stdev(b) / statistics.fmean(b) if len(b) > 1 else None,
        "within_noise": low <= 1.0 <= high,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"perffarm median: {result['perffarm_median']:.1f} tps (cv {_pct(result['perffarm_cv'])})"
    )
    print(f"bare median:     {result['bare_median']:.1f} tps (cv {_pct(result['bare_cv'])})")
    print(
        f"ratio perffarm/bare: {result['ratio_of_medians']:.4f} (medians), "
        f"{result['paired_ratio']:.4f} paired, 95% CI [{low:.4f}, {high:.4f}]"
    )
    print(
        "difference within noise"
        if result["within_noise"]
        else "difference NOT within noise: the interval excludes 1"
    )
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


if __name__ == "__main__":
    sys.exit(main())
