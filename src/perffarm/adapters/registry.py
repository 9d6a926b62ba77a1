"""Finding adapters: by name, or by recognising the content of an input.

Every adapter, built-in or a team's own, comes from the ``perffarm.adapters`` entry point
group through the one plug-in registry (``perffarm.plugins``); nothing here knows the
built-in formats by name.
"""

from __future__ import annotations

import threading
from pathlib import Path

from perffarm import plugins
from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.json_input import source_name

ENTRY_POINT_GROUP = plugins.ADAPTERS.entry_point_group
AUTO = "auto"

# One instance per loaded class (a registry reset loads the class again: a new instance).
_instances: dict[type[Adapter], Adapter] = {}
_instances_lock = threading.Lock()


def adapter_names() -> list[str]:
    """Names of every registered adapter, sorted."""
    return plugins.names(plugins.ADAPTERS)


def adapter(name: str) -> Adapter:
    """The adapter registered as ``name``; ``PluginError`` when there is none or it is broken."""
    cls: type[Adapter] = plugins.load(plugins.ADAPTERS, name)
    found = _instances.get(cls)
    if found is not None:
        return found
    try:
        made = cls()
    except Exception as exc:  # a third party's constructor must not look like our crash
        raise plugins.PluginError(
            f"{plugins.where(plugins.ADAPTERS, name)} could not be created: "
            f"{plugins.describe(exc)}",
            group=plugins.ADAPTERS.name,
            name=name,
            cause=exc,
        ) from None
    with _instances_lock:
        return _instances.setdefault(cls, made)


def get_adapter(name: str) -> Adapter:
    """``adapter(name)``, with the registry's error as an ``AdapterError``.

    Kept for ``perffarm formats`` (adapters/cli.py), which lists a broken adapter in red by
    catching ``AdapterError``; new code calls ``adapter`` and lets ``PluginError`` through.
    """
    try:
        return adapter(name)
    except plugins.PluginError as exc:
        raise AdapterError(str(exc)) from None


def detect(source: InputSource) -> Adapter:
    """The one adapter whose ``sniff`` recognises ``source``.

    None or several matching is an error that lists what was tried, so the user knows to
    pass ``--format``.
    """
    matching: list[Adapter] = []
    broken: list[str] = []
    for name in adapter_names():
        try:
            candidate = adapter(name)
        except plugins.PluginError:
            broken.append(name)
            continue
        try:
            recognised = candidate.sniff(source)
        except Exception:  # sniff must not raise; one that does simply does not recognise
            recognised = False
        if recognised:
            matching.append(candidate)
    label = source_name(source)
    if len(matching) == 1:
        return matching[0]
    if matching:
        names = ", ".join(found.name for found in matching)
        raise AdapterError(f"{label} looks like several formats ({names}); give --format")
    tried = ", ".join(name for name in adapter_names() if name not in broken)
    unloadable = f" (could not load: {', '.join(broken)})" if broken else ""
    raise AdapterError(
        f"could not tell the format of {label}: tried {tried}{unloadable}; give --format"
    )


def resolve(format_name: str, source: InputSource) -> Adapter:
    """The adapter for ``--format``: by name, or detected when the name is ``auto``."""
    return detect(source) if format_name == AUTO else adapter(format_name)


def parse_source(format_name: str, source: InputSource) -> tuple[Adapter, Parsed]:
    chosen = resolve(format_name, source)
    return chosen, chosen.parse(source)


def parse_path(path: Path, format_name: str = AUTO) -> tuple[Adapter, Parsed]:
    """Parse a file or a directory (asv results, Criterion's target directory)."""
    if not path.exists():
        raise AdapterError(f"{path} does not exist")
    try:
        source = InputSource.from_path(path)
    except OSError as exc:
        raise AdapterError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_source(format_name, source)


def parse_text(format_name: str, text: str) -> Parsed:
    """Parse what a command printed (``format: hyperfine`` in a suite); ``auto`` detects."""
    return parse_source(format_name, InputSource.from_text(text))[1]
