"""How well perffarm's change-point detector finds real steps without crying wolf.

Usage::

    .venv/bin/python benchmarks/changepoint_quality.py [--quick] [--out DIR] [--no-external]

Generates the labelled corpus of benchmarks/corpus.py (seeded; written to ``--out`` with the
ground truth beside each series), runs every detector on it and prints, for each one:
precision, recall and F1 (a detection within ±5 points of a true change counts; each true
change matches at most one detection), the target F1 (series with CV ≤ 2%, steps ≥ 5%;
smaller steps there are neither required nor held against a detector), the false alarms per
1,000 points on the series with no change, and the time taken. Then recall by step size and
precision/recall/F1 by noise band.

The detectors:

- perffarm: perffarm.analysis.changepoint.detect with the server's defaults;
- z-score: a lookback z-score as Conbench does it: each point against the mean and stdev of
  the 50 points before it, flagged when |z| > 5; a run of flagged points is one detection;
- PELT: ruptures' PELT, l2 cost, BIC-style penalty 2·σ²·ln(n) with σ from the median
  successive difference, min_size 5, jump 5 (jump 1 takes seconds per 2,000-point series);
- Otava: Apache Otava's compute_change_points, window 50, p 0.001, once with the same 2%
  minimum magnitude as perffarm and once with its default of 0.

PELT and Otava run in their own virtual environments under .work/bench-venvs/ (created with
pip on first use) through benchmarks/changepoint_bridge.py; when one cannot be installed,
its rows say "unavailable" and why.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import CVS, STEPS, LabelledSeries, make_corpus, write_corpus
from perffarm.analysis.changepoint import detect

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".work" / "bench-venvs"
BRIDGE = Path(__file__).resolve().parent / "changepoint_bridge.py"
TOLERANCE = 5
TARGET_MAX_CV = 0.02
TARGET_MIN_STEP = 0.05


class Unavailable(Exception):
    pass


# -- detectors ---------------------------------------------------------------------------------


def perffarm_detector(series: list[list[float]]) -> list[list[int]]:
    return [[p.index for p in detect(values)] for values in series]


def lookback_zscore(
    values: list[float], *, lookback: int = 50, threshold: float = 5.0, min_history: int = 10
) -> list[int]:
    """Conbench-style: each point's z-score against the ``lookback`` points before it."""
    x = np.asarray(values, dtype=float)
    s1 = np.concatenate(([0.0], np.cumsum(x - x[0])))
    s2 = np.concatenate(([0.0], np.cumsum((x - x[0]) ** 2)))
    flagged = np.zeros(x.size, dtype=bool)
    for i in range(min_history, x.size):
        lo = max(0, i - lookback)
        n = i - lo
        total = s1[i] - s1[lo]
        mean = total / n
        variance = max((s2[i] - s2[lo] - total * mean) / (n - 1), 0.0)
        if variance > 0:
            flagged[i] = abs(x[i] - x[0] - mean) / np.sqrt(variance) > threshold
    starts = flagged & ~np.concatenate(([False], flagged[:-1]))
    return np.flatnonzero(starts).tolist()


def zscore_detector(series: list[list[float]]) -> list[list[int]]:
    return [lookback_zscore(values) for values in series]


def ensure_venv(name: str, packages: list[str]) -> Path:
    """The Python of .work/bench-venvs/NAME with ``packages`` installed (created once)."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == " ".join(packages):
        return python
    VENVS.mkdir(parents=True, exist_ok=True)
    print(f"creating {venv.relative_to(ROOT)} with {', '.join(packages)} ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *packages],
    ]
    for command in steps:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"{' '.join(command[:3])}: {exc}") from None
        if done.returncode != 0:
            lines = [
                line
                for line in (done.stderr + done.stdout).splitlines()
                if line.strip() and not line.startswith("WARNING: Location")
            ]
            raise Unavailable(lines[-1] if lines else f"exit status {done.returncode}")
    marker.write_text(" ".join(packages))
    return python


def bridged(venv: str, packages: list[str], method: str, options: dict) -> Callable:
    def run(series: list[list[float]]) -> list[list[int]]:
        python = ensure_venv(venv, packages)
        request = json.dumps({"method": method, "options": options, "series": series})
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        try:
            done = subprocess.run(
                [str(python), str(BRIDGE)],
                input=request,
                capture_output=True,
                text=True,
                timeout=900,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise Unavailable("took longer than 15 minutes") from None
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise Unavailable(lines[-1] if lines else f"exit status {done.returncode}")
        return json.loads(done.stdout)["detections"]

    return run


PELT_OPTIONS = {"min_size": 5, "jump": 1, "factor": 2.0}


def pelt_detector(series: list[list[float]]) -> list[list[int]]:
    try:
        import ruptures  # noqa: F401
    except ImportError:
        return bridged("ruptures", ["ruptures"], "pelt", PELT_OPTIONS)(series)
    sys.path.insert(0, str(BRIDGE.parent))
    from changepoint_bridge import pelt

    return pelt(series, PELT_OPTIONS)


DETECTORS: dict[str, Callable[[list[list[float]]], list[list[int]]]] = {
    "perffarm": perffarm_detector,
    "z-score (Conbench, 5σ)": zscore_detector,
    "PELT (ruptures)": pelt_detector,
    "Otava (min 2%)": bridged(
        "otava", ["apache-otava"], "otava", {"window": 50, "p_value": 0.001, "min_magnitude": 0.02}
    ),
    "Otava (defaults)": bridged(
        "otava", ["apache-otava"], "otava", {"window": 50, "p_value": 0.001, "min_magnitude": 0.0}
    ),
}
EXTERNAL = {"PELT (ruptures)", "Otava (min 2%)", "Otava (defaults)"}


# -- scoring -----------------------------------------------------------------------------------


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Tally) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def match(truth: list[int], found: list[int]) -> dict[int, int]:
    """Truth index -> matched detection: closest pairs first, each used once."""
    pairs = sorted(
        (abs(t - d), ti, di)
        for ti, t in enumerate(truth)
        for di, d in enumerate(found)
        if abs(t - d) <= TOLERANCE
    )
    taken_truth: dict[int, int] = {}
    taken_found: set[int] = set()
    for _, ti, di in pairs:
        if ti not in taken_truth and di not in taken_found:
            taken_truth[ti] = di
            taken_found.add(di)
    return taken_truth


def score(series: LabelledSeries, found: list[int], *, min_step: float = 0.0) -> Tally:
    """Steps smaller than ``min_step`` are "don't care": matching them neither helps nor hurts."""
    truth = [c.index for c in series.changes]
    matched = match(truth, found)
    care = [abs(c.magnitude) >= min_step - 1e-12 for c in series.changes]
    tally = Tally()
    tally.tp = sum(1 for ti in matched if care[ti])
    tally.fn = sum(1 for ti, needed in enumerate(care) if needed and ti not in matched)
    tally.fp = len(found) - len(matched)
    return tally


@dataclass
class Outcome:
    name: str
    detections: list[list[int]] | None = None
    seconds: float = 0.0
    error: str | None = None
    rows: dict[str, object] = field(default_factory=dict)


def evaluate(corpus: list[LabelledSeries], outcome: Outcome) -> None:
    assert outcome.detections is not None
    overall, target = Tally(), Tally()
    by_step = {step: [0, 0] for step in STEPS}
    by_cv = {cv: Tally() for cv in CVS}
    alarms = points = 0
    for series, found in zip(corpus, outcome.detections, strict=True):
        tally = score(series, found)
        overall.add(tally)
        by_cv[series.cv].add(tally)
        if series.cv <= TARGET_MAX_CV:
            target.add(score(series, found, min_step=TARGET_MIN_STEP))
        matched = match([c.index for c in series.changes], found)
        for ti, change in enumerate(series.changes):
            step = round(abs(change.magnitude), 2)
            by_step[step][0] += ti in matched
            by_step[step][1] += 1
        if not series.changes:
            alarms += len(found)
            points += len(series.values)
    outcome.rows = {
        "overall": overall,
        "target": target,
        "alarms_per_1000": 1000 * alarms / points if points else 0.0,
        "by_step": by_step,
        "by_cv": by_cv,
    }


# -- output ------------------------------------------------------------------------------------


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print()


def report(corpus: list[LabelledSeries], outcomes: list[Outcome]) -> None:
    total_points = sum(len(s.values) for s in corpus)
    steps = sum(len(s.changes) for s in corpus)
    quiet = sum(1 for s in corpus if not s.changes)
    print(
        f"\ncorpus: {len(corpus)} series, {total_points} points, {steps} steps, "
        f"{quiet} series without change; tolerance ±{TOLERANCE} points\n"
    )
    rows = []
    for o in outcomes:
        if o.error:
            rows.append([o.name, *["–"] * 6, f"unavailable: {o.error}"])
            continue
        overall, target = o.rows["overall"], o.rows["target"]
        rows.append(
            [
                o.name,
                f"{overall.precision:.3f}",
                f"{overall.recall:.3f}",
                f"{overall.f1:.3f}",
                f"{target.f1:.3f}",
                f"{o.rows['alarms_per_1000']:.3f}",
                f"{o.seconds:.1f}",
                "",
            ]
        )
    print_table(
        [
            "detector",
            "precision",
            "recall",
            "F1",
            "F1 target",
            "false alarms/1000",
            "seconds",
            "",
        ],
        rows,
    )
    ok = [o for o in outcomes if not o.error]
    print("recall by step size (all noise levels)")
    print_table(
        ["detector", *(f"{s:.0%}" for s in STEPS)],
        [
            [
                o.name,
                *(
                    f"{hit / n:.2f}" if n else "–"
                    for hit, n in (o.rows["by_step"][s] for s in STEPS)
                ),
            ]
            for o in ok
        ],
    )
    print("precision / recall / F1 by noise (CV)")
    print_table(
        ["detector", *(f"CV {cv:.1%}" for cv in CVS)],
        [
            [
                o.name,
                *(
                    f"{t.precision:.2f}/{t.recall:.2f}/{t.f1:.2f}"
                    for t in (o.rows["by_cv"][cv] for cv in CVS)
                ),
            ]
            for o in ok
        ],
    )
    mine = next((o for o in ok if o.name == "perffarm"), None)
    if mine is not None:
        target_f1 = mine.rows["target"].f1
        others = [o for o in ok if o is not mine]
        fewer = all(
            mine.rows["alarms_per_1000"] < o.rows["alarms_per_1000"]
            or mine.rows["alarms_per_1000"] == 0 == o.rows["alarms_per_1000"]
            for o in others
        )
        print("targets")
        print(
            f"  F1 ≥ 0.9 on steps ≥ 5% at CV ≤ 2%: {target_f1:.3f} "
            f"{'met' if target_f1 >= 0.9 else 'NOT MET'}"
        )
        print(
            f"  fewer false alarms than every other detector: "
            f"{mine.rows['alarms_per_1000']:.3f}/1000 "
            f"{'met' if fewer else 'NOT MET'}"
            + (f" (compared with {len(others)} others)" if others else " (no other detector ran)")
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="120 series instead of 400")
    parser.add_argument("--count", type=int, help="number of series (overrides --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / ".work" / "changepoint-corpus",
        help="where the corpus and its ground truth are written",
    )
    parser.add_argument(
        "--no-external", action="store_true", help="skip PELT and Otava (no virtual envs)"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="run only detectors whose name has this"
    )
    args = parser.parse_args(argv)
    count = args.count or (120 if args.quick else 400)
    started = time.perf_counter()
    corpus = make_corpus(count, seed=args.seed)
    write_corpus(corpus, args.out)
    print(f"corpus of {count} series written to {args.out}")
    series = [s.values for s in corpus]
    outcomes = []
    for name, detector in DETECTORS.items():
        outcome = Outcome(name)
        if args.only and not any(part.lower() in name.lower() for part in args.only):
            continue
        if args.no_external and name in EXTERNAL:
            outcome.error = "skipped (--no-external)"
            outcomes.append(outcome)
            continue
        print(f"running {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            outcome.detections = detector(series)
        except Unavailable as exc:
            outcome.error = str(exc)
        except Exception as exc:  # another project's failure must not hide the other rows
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.seconds = time.perf_counter() - t0
        if outcome.detections is not None:
            evaluate(corpus, outcome)
        outcomes.append(outcome)
    report(corpus, outcomes)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
