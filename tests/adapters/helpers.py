"""Small helpers for reading sample files and picking results in adapter tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from perffarm.adapters.base import InputSource, Parsed
from perffarm.adapters.registry import get_adapter
from perffarm.model import Result
from tests.adapters.tools import DATA


def parse_sample(format_name: str, relative: str) -> Parsed:
    """Parse ``tests/data/adapters/<relative>`` with the adapter registered as ``format_name``."""
    return get_adapter(format_name).parse(InputSource.from_path(DATA / relative))


def parse_file(format_name: str, path: Path) -> Parsed:
    return get_adapter(format_name).parse(InputSource.from_path(path))


def pick(parsed: Parsed, benchmark: str, metric: str, **params: object) -> Result:
    """The one result with this benchmark, metric and (when given) params."""
    found = [
        result
        for result in parsed.results
        if result.benchmark == benchmark
        and result.metric == metric
        and all(result.params.get(key) == value for key, value in params.items())
    ]
    assert len(found) == 1, (
        f"expected one {benchmark!r}/{metric!r} {params}, found {len(found)} among "
        f"{[(r.benchmark, r.metric, r.params) for r in parsed.results]}"
    )
    return found[0]


def approx(values: list[float]) -> object:
    return pytest.approx(values, rel=1e-9, abs=0)


def pick_exact(parsed: Parsed, benchmark: str, metric: str, params: dict[str, object]) -> Result:
    """The one result with this benchmark and metric whose params are exactly ``params``."""
    found = [
        result
        for result in parsed.results
        if (result.benchmark, result.metric, result.params) == (benchmark, metric, params)
    ]
    assert len(found) == 1, f"expected one {benchmark!r}/{metric!r} {params}, found {len(found)}"
    return found[0]
