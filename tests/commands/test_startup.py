"""What keeps `perffarm --help` and `--version` fast: the command tree is built from
typer alone. Importing perffarm.commands and printing every help must not import the
library packages nor their heavy dependencies (benchmarks/cli_startup.py times it)."""

from __future__ import annotations

import json
import subprocess
import sys

# Imported by a command only when it runs.
HEAVY = (
    "perffarm.server",
    "perffarm.agent",
    "perffarm.analysis",
    "perffarm.adapters",
    "perffarm.loadtest",
    "perffarm.model",
    "perffarm.console",
    "sqlalchemy",
    "numpy",
    "scipy",
    "httpx",
    "pydantic",
    "rich",
    "platformdirs",
    "fastapi",
    "uvicorn",
)

_PROBE = """
import contextlib, io, json, sys
import typer
from perffarm.commands import app, main

def paths(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if getattr(command, "commands", None):
            yield from paths(command, (*prefix, name))

codes = []
with contextlib.redirect_stdout(io.StringIO()):
    codes.append(main(["--version"]))
    codes.append(main(["--help"]))
    for path in paths(typer.main.get_command(app)):
        codes.append(main([*path, "--help"]))
print(json.dumps({"codes": codes, "modules": sorted(sys.modules)}))
"""


def test_building_every_help_imports_nothing_heavy() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(done.stdout)
    assert set(report["codes"]) == {0} and len(report["codes"]) > 40
    loaded = [
        name
        for name in report["modules"]
        if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)
    ]
    assert not loaded, f"perffarm --help imported {loaded}"


def test_python_m_perffarm_commands_runs_the_command() -> None:
    from perffarm import __version__

    done = subprocess.run(
        [sys.executable, "-m", "perffarm.commands", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == f"perffarm {__version__}\n"


def test_the_light_copies_of_library_constants_agree_with_the_library() -> None:
    # The command modules repeat a few constants rather than import their modules.
    from perffarm.adapters import registry
    from perffarm.agent import store
    from perffarm.analysis import changepoint, compare
    from perffarm.commands import _shared, changepoints, ingest
    from perffarm.commands import compare as compare_command

    assert _shared.STORE_ENV == store.STORE_ENV
    assert ingest.AUTO == registry.AUTO
    assert changepoints.DEFAULT_WINDOW == changepoint.DEFAULT_WINDOW
    assert changepoints.DEFAULT_P_VALUE == changepoint.DEFAULT_P_VALUE
    assert changepoints.DEFAULT_MIN_MAGNITUDE == changepoint.DEFAULT_MIN_MAGNITUDE
    assert compare_command.DEFAULT_MIN_EFFECT == compare.DEFAULT_MIN_EFFECT
