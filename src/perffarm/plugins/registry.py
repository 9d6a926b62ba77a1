"""The one loader of plug-ins: names, loading (checked, cached), listing, suggestions.

Every group is read from the installed distributions' entry points, built-ins included;
nothing here knows a plug-in by name. Whatever goes wrong (an unknown name, a plug-in that
fails to import, one that breaks its group's contract, one name claimed by two
distributions) is a ``PluginError``: a one-line message naming the plug-in, its
distribution and the cause, which the command line prints without a traceback.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perffarm.console import UsageError
from perffarm.plugins.groups import DOCS, GROUPS, Group

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

# importlib.metadata, difflib and inspect are imported where they are used: importing this
# package (every command does, through the packages that use plug-ins) stays cheap.

#: Names longer than this are not compared for "did you mean" (difflib is quadratic).
_SUGGEST_MAX = 100
#: How much of a hostile name a message shows.
_SHOWN_MAX = 80


class PluginError(UsageError):
    """A plug-in cannot be used: unknown, fails to import, or breaks its contract.

    A usage/configuration error (exit code 2): the fix is in the suite, the command line
    or the installed packages, never in the run.
    """

    def __init__(
        self,
        message: str,
        *,
        group: str,
        name: str,
        distribution: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.group = group
        self.name = name
        self.distribution = distribution
        self.cause = cause


@dataclass(frozen=True)
class Plugin:
    """One registered plug-in, as its distribution declares it (not loaded)."""

    group: str
    name: str
    value: str
    """Where it is, ``module:attribute``."""
    distribution: str
    version: str

    @property
    def origin(self) -> str:
        """``distribution version (module:attribute)``, how messages name where it is from."""
        return f"{self.distribution} {self.version} ({self.value})".replace("  ", " ")


_lock = threading.Lock()
#: ``sys.path`` when the entry points were read: a change (a test, a plug-in folder added
#: at run time) makes the registry read them again.
_path: tuple[str, ...] = ()
_tables: dict[str, dict[str, list[Plugin]]] = {}
_loaded: dict[tuple[str, str], Any] = {}
_failed: dict[tuple[str, str], PluginError] = {}


def group_of(group: Group | str) -> Group:
    """The declaration of ``group`` (given by itself or by its short name)."""
    if isinstance(group, Group):
        return group
    try:
        return GROUPS[group]
    except KeyError:
        raise ValueError(
            f"no plug-in group {group!r}; perffarm's groups are {', '.join(GROUPS)}"
        ) from None


def names(group: Group | str) -> list[str]:
    """The names registered in ``group``, sorted; nothing is imported."""
    return sorted(_table(group_of(group)))


def listing(group: Group | str) -> list[Plugin]:
    """Every registration in ``group``, sorted by name (a name claimed twice is listed twice)."""
    table = _table(group_of(group))
    return [plugin for name in sorted(table) for plugin in table[name]]


def suggestions(group: Group | str, name: str) -> list[str]:
    """The registered names closest to ``name`` (a misspelling), best first; maybe none."""
    import difflib

    if len(name) > _SUGGEST_MAX:
        return []
    known = names(group)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.7)
    folded = [known_name for known_name in known if known_name.casefold() == name.casefold()]
    return list(dict.fromkeys([*folded, *close]))


def where(group: Group | str, name: str) -> str:
    """How messages name a registered plug-in: ``adapter 'x' from dist 1.0 (module:attr)``."""
    declared = group_of(group)
    origins = [plugin.origin for plugin in _table(declared).get(name, [])]
    source = f" from {'; '.join(origins)}" if origins else ""
    return f"{declared.noun} {_shown(name)}{source}"


def load(group: Group | str, name: str) -> Any:
    """The plug-in ``name`` of ``group``, imported and checked against its contract.

    Cached, successes and failures of registered plug-ins alike, until ``reset()`` (an
    unknown name is not remembered: names may come from users, without end).
    """
    declared = group_of(group)
    _follow_path()
    key = (declared.name, name)
    if key in _loaded:
        return _loaded[key]
    if key in _failed:
        raise _failed[key]
    # No lock held while a plug-in imports (its import may load plug-ins in turn): two
    # threads may both import it, and the import system makes that harmless.
    try:
        value = _load(declared, name)
    except PluginError as exc:
        if name not in _table(declared):
            raise
        raise _failed.setdefault(key, exc) from None
    return _loaded.setdefault(key, value)


def reset() -> None:
    """Forget what was read and loaded: the next call reads the installed packages again.

    For tests and for long-lived processes after ``pip install`` (a module already imported
    stays imported: Python has no unimport).
    """
    global _path
    with _lock:
        _path = tuple(sys.path)
        _tables.clear()
        _loaded.clear()
        _failed.clear()


def _follow_path() -> None:
    if tuple(sys.path) != _path:
        reset()


def _table(group: Group) -> dict[str, list[Plugin]]:
    _follow_path()
    table = _tables.get(group.name)
    if table is not None:
        return table
    from importlib.metadata import entry_points

    with _lock:
        table = {}
        # importlib.metadata lists each distribution once (the first on sys.path).
        for entry in entry_points(group=group.entry_point_group):
            table.setdefault(entry.name, []).append(_plugin(group, entry))
        return _tables.setdefault(group.name, table)


def _plugin(group: Group, entry: EntryPoint) -> Plugin:
    dist = entry.dist
    return Plugin(
        group=group.name,
        name=entry.name,
        value=entry.value,
        distribution=(dist.name if dist is not None else None) or "an unnamed distribution",
        version=(dist.version if dist is not None else None) or "",
    )


def _load(group: Group, name: str) -> Any:
    registered = _table(group).get(name)
    if not registered:
        raise PluginError(_unknown(group, name), group=group.name, name=name)
    if len(registered) > 1:
        claims = "; ".join(plugin.origin for plugin in registered)
        raise PluginError(
            f"{group.noun} {_shown(name)} is registered by several distributions ({claims}); "
            "uninstall all but one",
            group=group.name,
            name=name,
        )
    from importlib.metadata import EntryPoint

    (plugin,) = registered
    named = where(group, name)
    try:
        value = EntryPoint(plugin.name, plugin.value, group.entry_point_group).load()
    except (Exception, SystemExit) as exc:  # a third party's import must not look like our crash
        raise PluginError(
            f"{named} could not be loaded: {describe(exc)}",
            group=group.name,
            name=name,
            distribution=plugin.distribution,
            cause=exc,
        ) from None
    try:
        problem = group.problem(value)
    except Exception as exc:  # a contract that cannot be checked is perffarm's bug, named
        problem = f"checking it failed: {describe(exc)}"
    if problem is not None:
        raise PluginError(
            f"{named} is not a valid {group.noun}: {problem} "
            f"(the contract of {group.entry_point_group} is in {DOCS})",
            group=group.name,
            name=name,
            distribution=plugin.distribution,
        )
    return value


def _unknown(group: Group, name: str) -> str:
    known = names(group)
    installed = f"installed: {', '.join(known)}" if known else "none installed"
    close = suggestions(group, name)
    hint = f"; did you mean {' or '.join(repr(n) for n in close)}?" if close else ""
    return f"unknown {group.noun} {_shown(name)}{hint} ({installed})"


def _shown(name: str) -> str:
    """The name as a one-line quoted string, cut when it is long."""
    text = repr(name)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 4] + "...'"


def describe(exc: BaseException) -> str:
    """``ExcType: message`` on one line (``ExcType`` alone when there is no message)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
