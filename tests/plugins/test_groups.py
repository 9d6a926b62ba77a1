"""The group declarations: every built-in honours its contract, and the contracts agree."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from perffarm import plugins
from perffarm.plugins.groups import resolve

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "src" / "perffarm" / "plugins"

#: What perffarm ships in each group (registered in its pyproject.toml).
BUILT_INS = {
    "measurements": {"command", "python", "example", "pgbench", "remote-command"},
    "collectors": {"cpu", "memory", "os", "network", "disk", "python", "gpu", "git"},
    "adapters": {
        "generic-json", "generic-csv", "pytest-benchmark", "hyperfine", "google-benchmark",
        "go-bench", "pyperf", "wrk", "jmh", "criterion", "asv", "k6", "grpc-scenario",
        "grpc-qps", "bencher", "github-action-benchmark", "benchmarkdotnet", "catch2",
        "benchmarkjs", "libtest", "vitest", "pgbench",
    },
    "transports": {"websocket", "websockets-sansio", "websockets", "sink"},
    "routines": {"default", "idle"},
    "relays": {"influxdb"},
    "notifiers": {"webhook"},
}  # fmt: skip


def test_the_seven_groups_are_declared_once_each() -> None:
    assert list(plugins.GROUPS) == [
        "measurements", "collectors", "adapters", "transports", "routines", "relays",
        "notifiers",
    ]  # fmt: skip
    for name, group in plugins.GROUPS.items():
        assert group.name == name
        assert group.entry_point_group == f"perffarm.{name}"


def test_pyproject_registers_the_built_ins_in_declared_groups_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    registered = {
        group.removeprefix("perffarm."): set(entries)
        for group, entries in project["entry-points"].items()
    }
    assert registered == BUILT_INS


@pytest.mark.parametrize("group", list(plugins.GROUPS))
def test_every_built_in_loads_through_the_registry_and_honours_its_contract(group: str) -> None:
    declared = plugins.GROUPS[group]
    assert BUILT_INS[group] <= set(plugins.names(group))
    for name in BUILT_INS[group]:
        plugin = plugins.load(group, name)
        assert declared.problem(plugin) is None
        (registration,) = [p for p in plugins.listing(group) if p.name == name]
        assert registration.distribution == "perffarm"
        assert registration.value.startswith(f"{declared.builtins_in}")


@pytest.mark.parametrize("group", list(plugins.GROUPS))
def test_the_declared_methods_are_those_of_the_typed_contract(group: str) -> None:
    """The declaration and its typed twin (Protocol or base class) say the same."""
    declared = plugins.GROUPS[group]
    contract = declared.contract_type()
    if declared.shape == "class":
        defined = {
            name
            for name, value in vars(contract).items()
            if callable(value) and not name.startswith("_")
        }
        assert defined == set(declared.methods)
        for method in declared.methods:
            is_async = inspect.iscoroutinefunction(getattr(contract, method))
            assert is_async == (method in declared.coroutines), method
        init = inspect.signature(contract.__init__)
        positional = [
            p for p in list(init.parameters.values())[1:] if p.default is inspect.Parameter.empty
        ]
        assert len(positional) == declared.arguments
    elif declared.shape == "callable":
        assert not declared.methods and not declared.coroutines
        call = vars(contract).get("__call__") if isinstance(contract, type) else None
        if call is not None:
            parameters = list(inspect.signature(call).parameters)[1:]
            assert len(parameters) == declared.arguments
    else:
        assert isinstance(contract, type)
        for attribute, dotted in declared.attributes.items():
            assert issubclass(getattr(contract, attribute), resolve(dotted))


def test_the_contract_of_each_group_says_what_a_plug_in_is() -> None:
    for group in plugins.GROUPS.values():
        assert group.summary.endswith((".", ")")) and len(group.summary) > 60
        assert group.signature
        assert group.contract.startswith("perffarm.") and ":" in group.contract
        assert resolve(group.contract) is not None


def test_the_plugins_package_imports_only_the_model_and_the_leaf_modules() -> None:
    allowed = re.compile(r"perffarm(\.plugins(\..*)?|\.model(\..*)?|\.console|\.gcpause)?$")
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
                if node.module == "perffarm":
                    modules = [f"perffarm.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.startswith("perffarm"):
                    assert allowed.match(module), f"{path.name} imports {module}"


def test_importing_the_registry_loads_no_contract_module() -> None:
    code = (
        "import sys, perffarm.plugins as p; p.names('measurements'); p.names('notifiers'); "
        "print(sorted(m for m in sys.modules if m.startswith('perffarm.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(ast.literal_eval(done.stdout))
    assert loaded <= {
        "perffarm.console", "perffarm.plugins", "perffarm.plugins.groups",
        "perffarm.plugins.registry",
    }  # fmt: skip
