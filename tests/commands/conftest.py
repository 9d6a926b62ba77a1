"""Fixtures of the command tests: stored runs to compare and check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from perffarm.agent.store import LocalStore
from perffarm.model import Direction, Result, RunDocument, Source


def _run(
    store: LocalStore, seed: int, slowdown: float, started: datetime, commit: str
) -> RunDocument:
    rng = np.random.default_rng(seed)
    results = [
        Result(
            benchmark="parse",
            params={"size": 1000},
            metric="time",
            unit="s",
            samples=(0.5 * slowdown * (1 + rng.normal(0, 0.01, 10))).tolist(),
        ),
        Result(
            benchmark="render",
            metric="time",
            unit="s",
            samples=(0.2 * (1 + rng.normal(0, 0.01, 10))).tolist(),
        ),
        Result(
            benchmark="serve",
            metric="throughput",
            unit="1/s",
            direction=Direction.HIGHER,
            samples=(5000 * (1 + rng.normal(0, 0.01, 10))).tolist(),
        ),
    ]
    run = RunDocument(
        project="demo",
        machine="m1",
        started_at=started,
        source=Source(branch="main", commit=commit),
        results=results,
    )
    store.save(run)
    return run


@pytest.fixture
def runs(store_path: Path) -> dict[str, RunDocument]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with LocalStore(store_path) as store:
        return {
            "baseline": _run(store, 1, 1.0, start, "aaaa"),
            "noise": _run(store, 2, 1.0, start + timedelta(hours=1), "bbbb"),
            "slower": _run(store, 3, 1.10, start + timedelta(hours=2), "cccc"),
        }
