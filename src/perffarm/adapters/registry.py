"""Finding adapters: by name, or by recognising the content of an input.

Every adapter, built-in or a team's own, comes from the ``perffarm.adapters`` entry point
group; nothing here knows the built-in formats by name.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.json_input import source_name

ENTRY_POINT_GROUP = "perffarm.adapters"
AUTO = "auto"


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_names() -> list[str]:
    """Names of every registered adapter, sorted."""
    return sorted(_entry_points())


@functools.cache
def get_adapter(name: str) -> Adapter:
    """The adapter registered as ``name``; AdapterError when there is none or it is broken."""
    entry = _entry_points().get(name)
    if entry is None:
        known = ", ".join(adapter_names()) or "none"
        raise AdapterError(f"no adapter named {name!r} (known: {known})")
    try:
        adapter_class = entry.load()
        adapter = adapter_class()
    except Exception as exc:  # a third party's broken plug-in must not look like our crash
        raise AdapterError(f"adapter {name!r} ({entry.value}) could not be loaded: {exc}") from exc
    if not isinstance(adapter, Adapter):
        raise AdapterError(f"adapter {name!r} ({entry.value}) is not a perffarm Adapter")
    return adapter


def detect(source: InputSource) -> Adapter:
    """The one adapter whose ``sniff`` recognises ``source``.

    None or several matching is an error that lists what was tried, so the user knows to
    pass ``--format``.
    """
    matching: list[Adapter] = []
    broken: list[str] = []
    for name in adapter_names():
        try:
            adapter = get_adapter(name)
        except AdapterError:
            broken.append(name)
            continue
        try:
            recognised = adapter.sniff(source)
        except Exception:  # sniff must not raise; one that does simply does not recognise
            recognised = False
        if recognised:
            matching.append(adapter)
    label = source_name(source)
    if len(matching) == 1:
        return matching[0]
    if matching:
        names = ", ".join(adapter.name for adapter in matching)
        raise AdapterError(f"{label} looks like several formats ({names}); give --format")
    tried = ", ".join(name for name in adapter_names() if name not in broken)
    unloadable = f" (could not load: {', '.join(broken)})" if broken else ""
    raise AdapterError(
        f"could not tell the format of {label}: tried {tried}{unloadable}; give --format"
    )


def resolve(format_name: str, source: InputSource) -> Adapter:
    """The adapter for ``--format``: by name, or detected when the name is ``auto``."""
    return detect(source) if format_name == AUTO else get_adapter(format_name)


def parse_source(format_name: str, source: InputSource) -> tuple[Adapter, Parsed]:
    adapter = resolve(format_name, source)
    return adapter, adapter.parse(source)


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
