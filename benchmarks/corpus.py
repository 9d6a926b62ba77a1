"""A labelled corpus of benchmark-like series for judging change-point detectors.

Every series is generated from a seed, so the corpus is the same on every machine:

- 100 to 2,000 points (log-uniform, so short histories are as common as long ones);
- a level anywhere from microseconds to thousands of operations per second;
- Gaussian noise with a coefficient of variation of 0.5%, 1%, 2%, 5% or 10%;
- in about half of the series, outliers: 1% of the points slowed by 20% to 100% (a busy
  machine makes a benchmark slower, hardly ever faster);
- in a third, a slow linear drift of 0.5% to 3% over the whole series (thermal, ageing
  caches): not a change point;
- in 70% of the series, 1 to 3 steps of 1%, 2%, 5%, 10%, 20% or 30%, up or down, at least
  50 points apart and 25 from either end; the rest have no change at all.

Write it to a directory with ``python benchmarks/corpus.py --out DIR``: one JSON file per
series, holding the values and the ground truth beside them.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

CVS = (0.005, 0.01, 0.02, 0.05, 0.10)
STEPS = (0.01, 0.02, 0.05, 0.10, 0.20, 0.30)
MIN_GAP = 50
EDGE = 25


@dataclass
class Change:
    index: int
    """First point of the new level."""
    magnitude: float
    """Relative change of the level, e.g. -0.05 for 5% lower."""


@dataclass
class LabelledSeries:
    id: str
    values: list[float]
    cv: float
    changes: list[Change] = field(default_factory=list)
    outliers: int = 0
    drift: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LabelledSeries:
        data = json.loads(text)
        data["changes"] = [Change(**c) for c in data["changes"]]
        return cls(**data)


def _positions(rng: np.random.Generator, length: int, count: int) -> list[int]:
    """``count`` step positions MIN_GAP apart and EDGE from the ends (fewer if it cannot fit)."""
    for _ in range(100):
        picks = sorted(int(p) for p in rng.integers(EDGE, length - EDGE, size=count))
        gaps = np.diff([0, *picks, length])
        if all(g >= MIN_GAP for g in gaps[1:-1]) and all(g >= EDGE for g in (gaps[0], gaps[-1])):
            return picks
    return [length // 2]


def make_series(seed: int, *, change_share: float = 0.7) -> LabelledSeries:
    rng = np.random.default_rng(seed)
    length = round(math.exp(rng.uniform(math.log(100), math.log(2000))))
    cv = float(rng.choice(CVS))
    base = float(10 ** rng.uniform(-5, 3))
    level = np.full(length, base)
    changes: list[Change] = []
    if rng.random() < change_share:
        count = int(rng.integers(1, 4))
        for index in _positions(rng, length, count):
            magnitude = float(rng.choice(STEPS)) * (1 if rng.random() < 0.5 else -1)
            level[index:] *= 1 + magnitude
            changes.append(Change(index=index, magnitude=magnitude))
    drift = 0.0
    if rng.random() < 1 / 3:
        drift = float(rng.uniform(0.005, 0.03)) * (1 if rng.random() < 0.5 else -1)
        level *= 1 + drift * np.linspace(0, 1, length)
    values = level * (1 + rng.normal(0, cv, length))
    outliers = 0
    if rng.random() < 0.5:
        outliers = max(1, length // 100)
        where = rng.choice(length, size=outliers, replace=False)
        values[where] *= 1 + rng.uniform(0.2, 1.0, size=outliers)
    return LabelledSeries(
        id=f"s{seed:05d}",
        values=values.tolist(),
        cv=cv,
        changes=changes,
        outliers=outliers,
        drift=drift,
    )


def make_corpus(count: int, *, seed: int = 0) -> list[LabelledSeries]:
    return [make_series(seed * 1_000_003 + i) for i in range(count)]


def write_corpus(series: list[LabelledSeries], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for item in series:
        (out / f"{item.id}.json").write_text(item.to_json(), encoding="utf-8")


def read_corpus(directory: Path) -> list[LabelledSeries]:
    return [
        LabelledSeries.from_json(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("s*.json"))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    parser.add_argument("--count", type=int, default=400, help="number of series")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    corpus = make_corpus(args.count, seed=args.seed)
    write_corpus(corpus, args.out)
    steps = sum(len(s.changes) for s in corpus)
    print(f"wrote {len(corpus)} series ({steps} steps) to {args.out}")


if __name__ == "__main__":
    main()
