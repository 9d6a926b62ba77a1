"""`perffarm agent`: what its help says (the behaviour is in tests/agent/test_unattended.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from perffarm.commands import agent
from tests.support import require


def test_the_log_file_help_names_the_default_log_file(monkeypatch: pytest.MonkeyPatch) -> None:
    require(sys.platform.startswith("linux"), "the help names Linux's path")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    default = agent.default_log_file()
    assert default.name == "agent.log"
    shown = "~/" + str(default.parent.relative_to(Path.home()))
    assert f"agent.log in the user's log directory ({shown} on Linux)" in agent.LOG_FILE_HELP
