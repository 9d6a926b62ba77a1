"""Every command and subcommand has --help with an example, and no help crashes."""

from __future__ import annotations

import re

import pytest
import typer

from perffarm.commands import app, main


def _commands(group, prefix=()):
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if getattr(command, "commands", None):
            yield path, command
            yield from _commands(command, path)
        else:
            yield path, command


def _leaves():
    root = typer.main.get_command(app)
    return [(path, cmd) for path, cmd in _commands(root) if not hasattr(cmd, "commands")]


def test_every_command_has_help_with_an_example():
    found = _leaves()
    assert len(found) >= 10
    missing = [
        " ".join(path)
        for path, command in found
        if not re.search(
            r"Example: (\S+=\S+ )*perffarm " + re.escape(" ".join(path)),
            " ".join((command.help or "").split()),
        )
    ]
    assert not missing, f"commands without an example in --help: {missing}"


@pytest.mark.parametrize(
    "path", [path for path, _ in _commands(typer.main.get_command(app))], ids=" ".join
)
def test_help_prints_and_exits_0(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: perffarm {' '.join(path)}")
    assert "Example" in out


def test_the_root_help_lists_every_command_with_its_whole_first_sentence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split("Commands:")[1].split())
    assert "..." not in out  # click would cut long lines; perffarm wraps them
    assert "Run a benchmark suite on this machine and keep the run in the local store." in out
    for name in ("run", "upload", "machine", "token", "check", "server", "db", "user", "loadtest"):
        assert f" {name} " in out


def test_unknown_flag_is_one_line_pointing_to_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --no-such-flag" in err
    assert "see `perffarm runs --help`" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from perffarm import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"perffarm {__version__}\n"


@pytest.mark.parametrize("path", [[], ["machine"], ["loadtest"]], ids=" ".join)
def test_a_group_alone_prints_its_help_and_exits_2(
    path: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(path) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith(f"Usage: perffarm {' '.join(path)}".rstrip())
    assert "Commands:" in captured.out and captured.err == ""
