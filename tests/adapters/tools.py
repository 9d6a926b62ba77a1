"""Finding the real benchmark tools the adapter tests run.

A missing tool skips its test, unless PERFFARM_REQUIRE_TOOLS=1 (set on machines that are
meant to have them): then it fails, so that a broken setup cannot pass as a skip.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import NoReturn

from tests.support import unavailable

DATA = Path(__file__).resolve().parent.parent / "data" / "adapters"


def tool_missing(reason: str) -> NoReturn:
    unavailable(reason)


def require_program(name: str) -> str:
    """The path of executable ``name``, or skip/fail the test."""
    path = shutil.which(name)
    if path is None:
        tool_missing(f"{name} is not installed")
    return path


def require_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        tool_missing(f"the Python package {name} is not installed")


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        tool_missing(f"{what} is not installed ({path} is missing)")
    return path
