"""`perffarm server` refusals, the light install without the server extra, help texts."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from perffarm.commands import main


def test_sqlite_with_several_workers_is_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["server", "--database", str(tmp_path / "f.db"), "--workers", "2"])
    assert code == 2
    assert "PostgreSQL" in capsys.readouterr().err


def test_busy_port_is_one_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(
            ["server", "--address", f"127.0.0.1:{port}", "--database", str(tmp_path / "f.db")]
        )
    err = capsys.readouterr().err
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err


@pytest.mark.parametrize("address", ["8080", "host:", "host:99999"])
def test_bad_address_is_a_usage_error(address: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["server", "--address", address]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_without_the_server_extra_help_works_and_server_names_the_extra(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Blocking the import of fastapi is what an agent-only install looks like.
    script = (
        "import sys; sys.modules['fastapi'] = None\n"
        "from perffarm.commands import main\n"
        "assert main(['--help']) == 0\n"
        "sys.exit(main(['server', '--database', sys.argv[1]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "f.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "'server' extra" in done.stderr and "pip install 'perffarm[server]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["server"],
        ["db", "upgrade"],
        ["upload"],
        ["machine", "register"],
        ["machine", "approve"],
        ["machine", "list"],
    ],
)
def test_every_command_has_help_with_an_example(command: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([*command, "--help"]) == 0
    assert "Example" in capsys.readouterr().out
