"""perffarm's plug-ins: every extension group declared in one place, and the one loader.

``groups`` declares each group (measurements, collectors, adapters, transports, routines,
relays, notifiers): its entry-point group ``perffarm.<name>`` and the contract a plug-in
honours. ``registry`` finds, loads, checks and caches plug-ins; every failure is a
``PluginError``. The built-ins are registered in perffarm's ``pyproject.toml`` exactly as a
third party registers its own (docs/plugins.md).

This package imports only ``model`` and the leaf modules: the contract types live higher up
and are imported by their dotted names when a plug-in is checked.
"""

from perffarm.plugins.groups import (
    ADAPTERS,
    COLLECTORS,
    GROUPS,
    MEASUREMENTS,
    NOTIFIERS,
    RELAYS,
    ROUTINES,
    TRANSPORTS,
    Group,
)
from perffarm.plugins.registry import (
    Plugin,
    PluginError,
    describe,
    group_of,
    listing,
    load,
    names,
    reset,
    suggestions,
    where,
)

__all__ = [
    "ADAPTERS",
    "COLLECTORS",
    "GROUPS",
    "MEASUREMENTS",
    "NOTIFIERS",
    "RELAYS",
    "ROUTINES",
    "TRANSPORTS",
    "Group",
    "Plugin",
    "PluginError",
    "describe",
    "group_of",
    "listing",
    "load",
    "names",
    "reset",
    "suggestions",
    "where",
]
