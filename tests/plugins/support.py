"""Installing plug-in distributions for a test: real entry points, found as pip's would be.

A folder holding a package and its ``NAME-VERSION.dist-info`` (``METADATA`` and
``entry_points.txt``) is an installed distribution once it is on ``sys.path``: that is
all ``pip install`` leaves behind that perffarm reads. The registry reads the entry points
again whenever ``sys.path`` changes, so nothing of perffarm is patched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: A third party's working plug-ins, one or more in every group (also used by test_run).
THIRD_PARTY = Path(__file__).parents[1] / "agent" / "plugin_package"
#: Plug-ins that break their contracts, one way each.
BROKEN = Path(__file__).parent / "broken_package"


def install(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Put a folder of distributions on ``sys.path`` for this test only."""
    monkeypatch.syspath_prepend(str(folder))


def write_distribution(
    folder: Path, name: str, entry_points: str, modules: dict[str, str] | None = None
) -> Path:
    """A distribution ``name`` 1.0 in ``folder``: its entry points and its modules' code."""
    dist_info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(entry_points)
    for module, code in (modules or {}).items():
        (folder / f"{module}.py").write_text(code)
    return folder


def subprocess_env(*folders: Path) -> dict[str, str]:
    """The environment of a perffarm subprocess with these distribution folders installed."""
    path = [str(folder) for folder in folders]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
