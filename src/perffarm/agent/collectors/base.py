"""The collector contract: what a collector receives and what it returns.

A collector is a function ``collect(context) -> dict | None`` registered under the entry-point
group ``perffarm.collectors``. It returns one section of the run's environment (JSON-able
values, snake_case keys with unit suffixes, sizes in bytes), or None when it does not apply
on this machine (no GPU, not a git checkout). It may raise: the runner records the error and
carries on with the other collectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CollectorContext:
    """What a collector may need to know about the run."""

    cwd: Path
    """The directory the run works in (the disk and git collectors look there)."""


Section = dict[str, Any]
Collector = Callable[[CollectorContext], Section | None]
