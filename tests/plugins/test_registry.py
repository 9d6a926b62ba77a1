"""The one loader: unknown names, broken plug-ins, one error type, one readable line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perffarm import plugins
from perffarm.agent.config import load_suite
from perffarm.console import EXIT_USAGE, UsageError, UserError
from tests.plugins.support import BROKEN, install, subprocess_env, write_distribution


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, BROKEN)


def error_of(group: str, name: str) -> plugins.PluginError:
    with pytest.raises(plugins.PluginError) as caught:
        plugins.load(group, name)
    return caught.value


# --- unknown names ----------------------------------------------------------------------------


def test_plugin_error_is_a_usage_error_the_command_line_prints_as_one_line() -> None:
    error = error_of("measurements", "nope")
    assert isinstance(error, UserError) and isinstance(error, UsageError)
    assert error.exit_code == EXIT_USAGE
    assert (error.group, error.name, error.distribution, error.cause) == (
        "measurements", "nope", None, None,
    )  # fmt: skip


def test_an_unknown_name_gets_the_closest_names_and_the_installed_ones() -> None:
    message = str(error_of("measurements", "comand"))
    assert message == (
        "unknown measurement type 'comand'; did you mean 'command'? "
        "(installed: command, example, pgbench, python, remote-command)"
    )
    assert "did you mean 'hyperfine'?" in str(error_of("adapters", "Hyperfine"))
    assert "did you mean 'websocket' or 'websockets'?" in str(error_of("transports", "websoket"))
    assert "did you mean" not in str(error_of("routines", "zzz"))
    assert plugins.suggestions("collectors", "mem") == []
    assert plugins.suggestions("collectors", "memroy") == ["memory"]


def test_an_unknown_group_is_a_programming_error_naming_the_groups() -> None:
    with pytest.raises(ValueError, match=r"no plug-in group 'widgets'; .*measurements, "):
        plugins.names("widgets")


# Names as a user's suite or command line may hold them: any text at all.
hostile_names = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=2000),
    st.sampled_from(["", " ", "command ", "COMMAND", "\x00", "a\nb", "../../etc", "'\"", "é"]),
)


@settings(max_examples=150, deadline=None)
@given(name=hostile_names, group=st.sampled_from(list(plugins.GROUPS)))
def test_any_name_loads_a_plug_in_or_gives_one_line_naming_it(name: str, group: str) -> None:
    if name in plugins.names(group):
        assert plugins.GROUPS[group].problem(plugins.load(group, name)) is None
        return
    error = error_of(group, name)
    message = str(error)
    assert message.startswith(f"unknown {plugins.GROUPS[group].noun} ")
    assert "\n" not in message and "\r" not in message
    assert len(message) < 600
    assert error.name == name and error.group == group


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=st.text(max_size=30))
def test_any_measurement_type_in_a_suite_is_a_usage_error_with_its_line(
    tmp_path: Path, name: str
) -> None:
    if name in plugins.names("measurements"):
        return
    suite = tmp_path / "suite.yaml"
    # JSON's string syntax is YAML's double-quoted one: the name arrives exactly as written.
    suite.write_text(
        f"project: demo\nmeasurements:\n  - name: one\n    type: {json.dumps(name)}\n",
        encoding="utf-8",
    )
    with pytest.raises(UsageError) as caught:
        load_suite(suite)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{suite}:")
    if "invalid YAML" not in message:
        # The registry's message, or the suite model's own for an empty name.
        assert message.startswith(f"{suite}:4: measurements[0].type: ")


# --- broken plug-ins --------------------------------------------------------------------------


@pytest.mark.usefixtures("broken")
def test_a_plug_in_that_fails_to_import_names_itself_its_distribution_and_the_cause() -> None:
    error = error_of("measurements", "unimportable")
    assert str(error) == (
        "measurement type 'unimportable' from perffarm-broken-plugins 0.1 "
        "(perffarm_broken_no_such_module:Measurement) could not be loaded: "
        "ModuleNotFoundError: No module named 'perffarm_broken_no_such_module'"
    )
    assert error.distribution == "perffarm-broken-plugins"
    assert isinstance(error.cause, ModuleNotFoundError)

    error = error_of("collectors", "explodes")
    assert str(error).endswith(
        "could not be loaded: RuntimeError: the sensor library is missing its calibration file"
    )
    # Even a module that calls sys.exit() while imported is an error, not the end of perffarm.
    error = error_of("notifiers", "exits")
    assert str(error).endswith("could not be loaded: SystemExit: 3")


@pytest.mark.usefixtures("broken")
@pytest.mark.parametrize(
    ("group", "name", "problem"),
    [
        ("measurements", "not-a-class", "it is a function, not a class"),
        ("collectors", "sample-rate", "it is a int, not a callable"),
        ("adapters", "pretender", "it is not a subclass of perffarm.adapters.base.Adapter"),
        ("transports", "sync", "its method connect() must be a coroutine (async def)"),
        ("routines", "no-options", "it must accept 1 positional argument, not ()"),
        ("relays", "half", "it has no method deliver()"),
    ],
)
def test_a_plug_in_that_breaks_its_contract_is_refused_when_loaded(
    group: str, name: str, problem: str
) -> None:
    declared = plugins.GROUPS[group]
    error = error_of(group, name)
    assert str(error).startswith(f"{declared.noun} {name!r} from perffarm-broken-plugins 0.1 (")
    assert f"is not a valid {declared.noun}: {problem} " in str(error)
    assert str(error).endswith(f"(the contract of perffarm.{group} is in docs/plugins.md)")
    assert error.distribution == "perffarm-broken-plugins"


@pytest.mark.usefixtures("broken")
def test_a_name_two_distributions_claim_is_refused_naming_both() -> None:
    error = error_of("adapters", "hyperfine")
    assert "adapter 'hyperfine' is registered by several distributions (" in str(error)
    assert "perffarm 0.1.0 (perffarm.adapters.hyperfine:HyperfineAdapter)" in str(error)
    assert "perffarm-broken-plugins 0.1 (perffarm_broken_plugins:NotAnAdapter)" in str(error)
    assert [p.distribution for p in plugins.listing("adapters") if p.name == "hyperfine"] == [
        "perffarm-broken-plugins", "perffarm",
    ]  # fmt: skip


def test_loads_are_cached_and_the_registry_follows_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert plugins.load("routines", "idle") is plugins.load("routines", "idle")
    assert "late" not in plugins.names("routines")
    write_distribution(
        tmp_path,
        "perffarm-late",
        "[perffarm.routines]\nlate = perffarm_late_routine:make\n",
        {"perffarm_late_routine": "def make(options=None):\n    return print\n"},
    )
    install(monkeypatch, tmp_path)
    assert "late" in plugins.names("routines")
    assert plugins.load("routines", "late")(None) is print
    monkeypatch.undo()
    assert "late" not in plugins.names("routines")


# --- what the user sees -----------------------------------------------------------------------


def run_perffarm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perffarm.commands", *args],
        env={**subprocess_env(BROKEN), "PERFFARM_STORE": str(cwd / "store.db")},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_broken_measurement_type_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("project: demo\nmeasurements:\n  - name: one\n    type: unimportable\n")
    done = run_perffarm("run", str(suite), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {suite}:4: measurements[0].type: measurement type ")
    assert "from perffarm-broken-plugins 0.1" in line
    assert line.endswith("No module named 'perffarm_broken_no_such_module'")


def test_ingest_with_an_adapter_that_breaks_its_contract_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text("queuebench 1.0\nsend: 10 msg/s\n")
    done = run_perffarm(
        "ingest", "out.txt", "--project", "p", "--format", "pretender", cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: adapter 'pretender' from perffarm-broken-plugins 0.1")
    assert "not a subclass of perffarm.adapters.base.Adapter" in line
