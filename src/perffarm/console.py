"""What every command shares: the terminal, user errors and their exit codes.

A user error is reported as one readable line and a non-zero exit, never a traceback.
Exit code 2 means the command line or a config file is wrong; 1 means the work failed.

The terminal shows text literally. Run names, benchmarks, params, errors, paths: whatever a
user or a stored run gives may hold square brackets (``test_read[/dev/null]``), colons
(``:smile:``) or control characters, and rich would read the first as markup (and fail on
an unmatched closing tag), the second as emoji codes, and pass the third to the terminal.
So the consoles here never interpret a string: every string they print, table cells and
titles included, goes through ``LiteralConsole.render_str``; colour comes only from styles
given beside the text (``literal(text, style)``, ``line(...)``), never from inside it.
Panel titles and progress columns build their text without the console: give them
``literal(...)`` (or ``TextColumn(..., markup=False)`` with ``visible(...)``).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from rich.console import Console
from rich.style import Style
from rich.text import Text

EXIT_FAILURE = 1
EXIT_USAGE = 2

# C0 and C1 control characters but tab and newline, DEL, the Unicode line and paragraph
# separators and the bidirectional controls (which reorder what a terminal shows). Tabs
# become spaces: rich counts a tab as one column in a table cell, then prints it wider.
_INVISIBLE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escape_code(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``) and tabs as spaces,
    so a stored string cannot move the cursor, clear the screen or hide part of itself."""
    return _INVISIBLE.sub(_escape_code, text).expandtabs(4)


def literal(value: object, style: str | Style = "") -> Text:
    """User or stored text for rich: shown as it is (never markup), in ``style``."""
    return Text(visible(str(value)), style=style)


def line(*parts: str | Text | tuple[object, str]) -> Text:
    """A message of literal parts: a string as it is, ``(text, style)`` in that style."""
    text = Text()
    for part in parts:
        if isinstance(part, Text):
            text.append_text(part)
        elif isinstance(part, tuple):
            text.append_text(literal(part[0], part[1]))
        else:
            text.append_text(literal(part))
    return text


class LiteralConsole(Console):
    """A rich console that shows every string as it is: no markup, no emoji codes, control
    characters as escapes. It is the only way a string becomes rich text when printed,
    put in a table cell or used as a table title."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **options)

    def render_str(
        self,
        text: str,
        *,
        style: str | Style = "",
        justify: Any = None,
        overflow: Any = None,
        emoji: bool | None = None,
        markup: bool | None = None,
        highlight: bool | None = None,
        highlighter: Any = None,
    ) -> Text:
        return super().render_str(
            visible(text),
            style=style,
            justify=justify,
            overflow=overflow,
            emoji=False,
            markup=False,
            highlight=False,
        )


console = LiteralConsole()
err_console = LiteralConsole(stderr=True)
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
    """One line on stderr, whatever the message holds: brackets (IPv6 hosts,
    "perffarm[server]") are text like any other, and a line break (a file name may hold
    one) is written as an escape."""
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    err_console.print(line(("error:", "bold red"), " ", one_line), soft_wrap=True)


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
