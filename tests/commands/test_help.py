"""Every command and subcommand has --help with an example, and no help crashes."""

from __future__ import annotations

import re

import typer

from perffarm.cli import app


def _commands(group, prefix=()):
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if getattr(command, "commands", None):
            yield from _commands(command, path)
        else:
            yield path, command


def test_every_command_has_help_with_an_example():
    root = typer.main.get_command(app)
    found = list(_commands(root))
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
