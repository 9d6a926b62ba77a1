"""Collectors describe the machine a run measures on; this module runs them all.

Every collector, built-in or third-party, is found through the entry-point group
``perffarm.collectors`` (the plug-in registry, ``perffarm.plugins``) and runs in a thread of
its own, so the whole takes about as long
as the slowest one. A collector that raises, hangs past the timeout or returns something
that is not JSON gets a line in ``Environment.errors``; the others still fill their
sections, and the run goes on: describing the machine must never cost a measurement.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from perffarm import plugins
from perffarm.agent.collectors.base import Collector, CollectorContext, Section
from perffarm.agent.collectors.fingerprint import (
    DEFAULT_FINGERPRINT_KEYS,
    fingerprint_of,
    normalize_keys,
)
from perffarm.agent.collectors.git import source_from_git
from perffarm.model import Environment

ENTRY_POINT_GROUP = plugins.COLLECTORS.entry_point_group

__all__ = [
    "DEFAULT_FINGERPRINT_KEYS",
    "ENTRY_POINT_GROUP",
    "Collector",
    "CollectorContext",
    "collect_environment",
    "fingerprint_of",
    "load_collectors",
    "source_from_git",
]


def collect_environment(
    cwd: Path,
    *,
    fingerprint_keys: Iterable[str] | None = None,
    collectors: Mapping[str, Collector] | None = None,
    timeout: float = 10.0,
) -> Environment:
    """Run the collectors (all registered ones unless ``collectors`` is given) concurrently.

    ``timeout`` bounds the whole collection: a collector still running then is reported as
    timed out and left behind in its daemon thread (Python cannot stop a thread).
    """
    errors: dict[str, str] = {}
    if collectors is None:
        collectors, errors = load_collectors()
    context = CollectorContext(cwd=Path(cwd))
    runs = [_CollectorRun(name, collector, context) for name, collector in collectors.items()]
    for run in runs:
        run.thread.start()

    deadline = time.monotonic() + timeout
    sections: dict[str, Section] = {}
    for run in runs:
        run.thread.join(max(0.0, deadline - time.monotonic()))
        if run.thread.is_alive():
            errors[run.name] = f"TimeoutError: collector did not finish within {timeout:g} s"
        elif run.error is not None:
            errors[run.name] = run.error
        elif run.section is not None:
            try:
                sections[run.name] = _json_section(run.section)
            except (TypeError, ValueError) as exc:
                errors[run.name] = describe_error(exc)

    keys = normalize_keys(
        DEFAULT_FINGERPRINT_KEYS if fingerprint_keys is None else fingerprint_keys
    )
    environment = Environment(
        sections=dict(sorted(sections.items())),
        errors=dict(sorted(errors.items())),
        fingerprint_keys=keys,
    )
    environment.fingerprint = fingerprint_of(environment, keys)
    return environment


def load_collectors() -> tuple[dict[str, Collector], dict[str, str]]:
    """The registered collectors by name, and the errors of those that cannot be used.

    An error is kept as the run document records every collector error, ``ExcType:
    message``: the import's own exception, or the registry's ``PluginError`` for a
    collector that breaks the contract (or a name two packages claim).
    """
    collectors: dict[str, Collector] = {}
    errors: dict[str, str] = {}
    for name in plugins.names(plugins.COLLECTORS):
        try:
            collectors[name] = plugins.load(plugins.COLLECTORS, name)
        except plugins.PluginError as exc:
            errors[name] = describe_error(exc.cause if exc.cause is not None else exc)
    return collectors, errors


def describe_error(exc: BaseException) -> str:
    """``ExcType: message``, the form every collector error takes in the run document."""
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class _CollectorRun:
    """One collector in its own daemon thread, so a hang cannot keep the agent alive."""

    def __init__(self, name: str, collector: Collector, context: CollectorContext) -> None:
        self.name = name
        self.section: Any = None
        self.error: str | None = None
        self._collector = collector
        self._context = context
        self.thread = threading.Thread(
            target=self._run, name=f"perffarm-collector-{name}", daemon=True
        )

    def _run(self) -> None:
        try:
            self.section = self._collector(self._context)
        except BaseException as exc:  # SystemExit from a plug-in must not end the agent
            self.error = describe_error(exc)


def _json_section(value: Any) -> Section:
    """The section as plain JSON values (tuples become lists); refuses NaN and objects."""
    if not isinstance(value, dict):
        raise TypeError(f"collector returned {type(value).__name__}, expected dict or None")
    return json.loads(json.dumps(value, allow_nan=False))
