"""Small helpers for tests (importable as ``tests.support``).

``require`` is the one way a test skips. A test skips only when something outside perffarm
is missing (the PostgreSQL server, a benchmark tool, a platform feature); perffarm's own
code and the packages its test setup installs are imported plainly, so that a broken
install fails instead of skipping. In CI (``.ci/run``) PERFFARM_REQUIRE_POSTGRES=1 and
PERFFARM_REQUIRE_TOOLS=1 turn every such skip into a failure; tests/test_skips.py fails
on any other way of skipping.
"""

from __future__ import annotations

import os
import socket
from typing import Literal, NoReturn

import pytest

#: What a test may need that is not perffarm's, and the variable that makes it required.
REQUIRED_BY: dict[str, str] = {
    "postgres": "PERFFARM_REQUIRE_POSTGRES",
    "tools": "PERFFARM_REQUIRE_TOOLS",
}


def unavailable(reason: str, *, needs: Literal["postgres", "tools"] = "tools") -> NoReturn:
    """Skip the calling test (or module) because ``reason``; fail instead when the
    variable for ``needs`` is set to 1, so that a broken setup cannot pass as a skip."""
    variable = REQUIRED_BY[needs]
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason} ({variable}=1 makes this a failure)")
    pytest.skip(reason, allow_module_level=True)


def require(
    condition: object, reason: str, *, needs: Literal["postgres", "tools"] = "tools"
) -> None:
    """Go on only if ``condition`` holds; otherwise ``unavailable(reason)``. Called in a
    test, a fixture or at a module's top level (for the whole module)."""
    if not condition:
        unavailable(reason, needs=needs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
