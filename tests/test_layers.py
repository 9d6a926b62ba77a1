"""The package's structure as a rule: no import cycle between modules or packages, every
package imports only what its layer allows, and SQL stays in the server's store.

The imports are read from the source (every ``import`` statement, at any depth, also the
ones a function makes late or a type checker alone reads), so a rule broken in a rarely
run path still fails here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "src" / "perffarm"
#: Modules that import nothing of perffarm and may be imported by anything.
LEAVES = {
    "perffarm",
    "perffarm.console",
    "perffarm.gcpause",
    "perffarm.redact",
    "perffarm.yamlfile",
}
#: What each package may import (besides itself and the leaves).
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "proto": set(),
    "plugins": {"model"},
    "analysis": {"model"},
    "adapters": {"model", "analysis", "plugins"},
    "client": {"model", "proto"},
    "agent": {"model", "analysis", "adapters", "plugins", "client"},
    "loadtest": {"model", "analysis", "plugins", "client"},
    "server": {"model", "analysis", "plugins", "proto", "adapters", "loadtest"},
    "web": {"model", "analysis", "server"},
}
#: Packages above every other: they compose the rest.
TOP = {"app", "commands", "__main__"}
#: The only modules of these packages the server may use: pure ones.
SERVER_MAY_USE = {
    "adapters": {"perffarm.adapters.base", "perffarm.adapters.grpc_scenario"},
    "loadtest": {
        "perffarm.loadtest.relays",
        "perffarm.loadtest.sketch",
        "perffarm.loadtest.summary",
        "perffarm.loadtest.thresholds",
    },
}
#: The server's layers, lowest first: a layer imports only itself and those before it.
SERVER_LAYERS = [
    {"core"},
    {"store"},
    {"permissions", "settings"},
    {"services"},
    {"http", "grpc"},
]
GENERATED = "perffarm.proto"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in ROOT.rglob("*.py")
        if "migrations" not in path.parts and not _module_name(path).startswith(GENERATED + ".")
    }


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` names a module; `from module import name` does not.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "perffarm" or target.startswith("perffarm."):
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in known and target != name:
                    yield target


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules) | {GENERATED}
    return {name: set(_imports(name, path, known)) for name, path in modules.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None (an iterative depth-first search)."""
    state: dict[str, int] = {}
    for start in sorted(edges):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(edges.get(start, ()))))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, ())))))
    return None


def test_no_cycle_between_modules(graph: dict[str, set[str]]) -> None:
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_no_cycle_between_packages(graph: dict[str, set[str]]) -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module in LEAVES:
            continue
        edges = packages.setdefault(_package(module), set())
        edges |= {_package(t) for t in targets if t not in LEAVES} - {_package(module)}
    cycle = _cycle(packages)
    assert cycle is None, " -> ".join(cycle or [])


def test_each_package_imports_only_what_its_layer_allows(graph: dict[str, set[str]]) -> None:
    broken = []
    for module, targets in sorted(graph.items()):
        if module in LEAVES:
            broken += [f"{module} -> {t}" for t in targets]
            continue
        own = _package(module)
        if own in TOP:
            continue
        allowed = ALLOWED.get(own)
        assert allowed is not None, f"{module}: a package the layer rules do not name"
        for target in sorted(targets):
            other = _package(target)
            if target in LEAVES or other == own:
                continue
            if other not in allowed:
                broken.append(f"{module} -> {target}")
            elif (
                own == "server" and other in SERVER_MAY_USE and target not in SERVER_MAY_USE[other]
            ):
                broken.append(f"{module} -> {target} (not a pure module)")
    assert not broken, "\n".join(broken)


def _server_layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 3 or parts[1] != "server":
        return None
    for index, layer in enumerate(SERVER_LAYERS):
        if parts[2] in layer:
            return index
    return None


def test_server_layers_import_only_downwards(graph: dict[str, set[str]]) -> None:
    broken = []
    for module, targets in sorted(graph.items()):
        own = _server_layer(module)
        if module.startswith("perffarm.server.") and own is None and module != "perffarm.server":
            broken.append(f"{module}: in no layer")
            continue
        for target in sorted(targets):
            other = _server_layer(target)
            if own is not None and other is not None and other > own:
                broken.append(f"{module} -> {target}")
    assert not broken, "\n".join(broken)


def test_sql_lives_only_in_the_store(graph: dict[str, set[str]]) -> None:
    """No module of the transports or the web reads the tables: they ask the store."""
    tables = "perffarm.server.store.tables"
    readers = sorted(m for m, targets in graph.items() if tables in targets)
    outside = [m for m in readers if not m.startswith("perffarm.server.store.")]
    assert not outside, outside


def test_the_walk_sees_the_imports(graph: dict[str, set[str]]) -> None:
    """The rules above are only as good as the walk: it must see real edges."""
    assert "perffarm.server.store.tables" in graph["perffarm.server.store.runs"]
    assert "perffarm.server.core.principal" in graph["perffarm.server.permissions"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
