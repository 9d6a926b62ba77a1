"""Which rule of ``server/permissions.py`` decides who may call each route, as the routes
declare it, and the table of docs/auth.md made from it.

A route names its rule in its OpenAPI operation (``openapi_extra=rule(permissions.ADMIN)``
puts ``x-perffarm-rule: admin`` there, pages and forms included, though they are not in the
document). ``declared(routes)`` reads every route of an app back, with its rule or None;
the permission matrix test calls every route with every kind of caller and fails on a
route without a rule, and ``markdown`` writes the "who may do what" table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from perffarm.server import permissions
from perffarm.server.permissions import Rule

RULE_KEY = "x-perffarm-rule"
#: The routes FastAPI adds itself (by route name): the OpenAPI document and its viewer.
FRAMEWORK_RULES = {
    "openapi": permissions.ANYONE,
    "swagger_ui_html": permissions.ANYONE,
    "swagger_ui_redirect": permissions.ANYONE,
}
#: HEAD is GET without the body: a route's GET stands for both.
IMPLIED_METHODS = frozenset({"HEAD"})


def rule(which: Rule, **openapi: Any) -> dict[str, Any]:
    """A route's ``openapi_extra``: the rule that decides who may call it, with the
    operation's other extra fields."""
    return {RULE_KEY: which.name, **openapi}


@dataclass(frozen=True)
class Declared:
    """One method of one route and the rule it declares (None: it declares none)."""

    method: str
    path: str
    rule: Rule | None


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for route in routes:
        # An included router keeps its own routes in this FastAPI: walk into it.
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif getattr(route, "methods", None):
            yield prefix + route.path, route


def _rule_of(route: Any) -> Rule | None:
    extra = getattr(route, "openapi_extra", None)
    if isinstance(extra, Mapping) and RULE_KEY in extra:
        return permissions.RULES.get(str(extra[RULE_KEY]))
    if not hasattr(route, "openapi_extra"):
        return FRAMEWORK_RULES.get(getattr(route, "name", ""))
    return None


def declared(routes: Iterable[Any]) -> list[Declared]:
    """Every (method, path) an app serves, with its rule, in the app's order."""
    found = []
    for path, route in _walk(routes):
        methods = set(route.methods)
        if "GET" in methods:
            methods -= IMPLIED_METHODS
        found += [Declared(m, path, _rule_of(route)) for m in sorted(methods)]
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(routes: Iterable[Declared], grpc_methods: Mapping[str, Rule]) -> str:
    """The "who may do what" of docs/auth.md: the global rules, what each rule allows, and
    the rule of every route and gRPC method."""
    listed = list(routes)
    missing = [f"{d.method} {d.path}" for d in listed if d.rule is None]
    if missing:
        raise ValueError(f"routes without a rule: {', '.join(missing)}")
    lines = ["Before each route's own rule, for every route:", ""]
    lines += [f"- {text}" for text in permissions.GLOBAL_RULES]
    lines += ["", "| rule | who may call |", "| --- | --- |"]
    lines += [f"| `{name}` | {_cell(which.who)} |" for name, which in permissions.RULES.items()]
    lines += ["", "| route | rule |", "| --- | --- |"]
    for d in sorted(listed, key=lambda d: (d.path, d.method)):
        assert d.rule is not None
        # A path parameter's converter ({owner:text}) is how it is matched, not its name.
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", d.path)
        lines.append(f"| `{d.method} {_cell(path)}` | `{d.rule.name}` |")
    for method, which in sorted(grpc_methods.items()):
        lines.append(f"| gRPC `{method}` | `{which.name}` |")
    return "\n".join(lines) + "\n"


#: docs/auth.md's table stands between these lines (scripts/permission-table rewrites it).
TABLE_BEGIN = "<!-- permission table: written by scripts/permission-table, do not edit -->"
TABLE_END = "<!-- end of the permission table -->"


def with_table(document: str, table: str) -> str:
    """``document`` with the text between the table's markers replaced by ``table``."""
    head, begin, rest = document.partition(TABLE_BEGIN)
    _, end, tail = rest.partition(TABLE_END)
    if not begin or not end:
        raise ValueError(f"the document lacks the lines {TABLE_BEGIN!r} and {TABLE_END!r}")
    return f"{head}{TABLE_BEGIN}\n\n{table}\n{TABLE_END}{tail}"
