"""What every command shares: the terminal, user errors and their exit codes.

A user error is reported as one readable line and a non-zero exit, never a traceback.
Exit code 2 means the command line or a config file is wrong; 1 means the work failed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

EXIT_FAILURE = 1
EXIT_USAGE = 2

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
if not console.is_terminal and "COLUMNS" not in __import__("os").environ:
    # Piped output (CI logs, files) has no width to follow: 80 columns would fold tables.
    console.width = 120


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(UserError):
    """A wrong flag, argument or config file (exit code 2)."""

    exit_code = EXIT_USAGE


def report_error(message: str) -> None:
    # escape: brackets in a message (IPv6 hosts, "perffarm[server]") are text, not markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str))
    sys.stdout.write("\n")


def require_extra(module: str, extra: str) -> None:
    """Fail with the pip command to run when an optional part is not installed."""
    try:
        __import__(module)
    except ImportError as exc:
        raise UserError(
            f"this command needs perffarm's {extra!r} extra ({exc.name} is missing): "
            f"pip install 'perffarm[{extra}]'"
        ) from None
