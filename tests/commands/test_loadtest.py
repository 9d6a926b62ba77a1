"""`perffarm loadtest server` refusals: the same one-line errors as `perffarm server`
(both use perffarm.commands._serving). Real load tests: tests/loadtest/."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from perffarm.commands import main


def _server(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "loadtest", "server", "--host", "127.0.0.1", "--results-location", str(tmp_path / "r"),
        "--database", str(tmp_path / "lt.db"), "--token", "t", *extra,
    ]  # fmt: skip


def test_busy_port_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(_server(tmp_path, "--port", str(port)))
    err = capsys.readouterr().err
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err
    assert "choose another --port" in err and "Traceback" not in err


def test_unknown_compat_auth_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_server(tmp_path, "--compat-auth", "maybe")) == 2
    assert "--compat-auth 'maybe': choose open or token" in capsys.readouterr().err


def test_a_bad_database_url_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(_server(tmp_path, "--database", "mysql://nobody@nowhere/db"))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --database:") and "Traceback" not in err
