"""What several command modules share: option definitions and small parsers of option text.

Only typer and the standard library at module level: every command module imports this
while `perffarm --help` is being built, so it must stay light.
"""

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from perffarm.agent.store import LocalStore


class HelpGroup(TyperGroup):
    """A command group whose --help lists each command with its whole first sentence.

    Help is plain click help (perffarm.commands explains why); click would cut each
    command's line at the terminal's width with "...", this wraps it instead.
    """

    def get_help_option(self, ctx: Any) -> Any:
        # typer coerces every option whose value is not a bool through a pydantic
        # TypeAdapter, and -h/--help has no default: None, when a subcommand runs, made
        # `perffarm run --help` import pydantic (~60 ms) for the group's unused flag.
        option = super().get_help_option(ctx)
        if option is not None:
            option.default = False
        return option

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=500)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def group(name: str, help: str) -> typer.Typer:
    """A command group (`perffarm machine ...`): plain help, and help without a subcommand."""
    return typer.Typer(name=name, help=help, cls=HelpGroup, no_args_is_help=True)


# The same name as perffarm.agent.store.STORE_ENV (tests/commands/test_startup.py checks):
# importing the store here would import pydantic for every `perffarm --help`.
STORE_ENV = "PERFFARM_STORE"

STORE_OPTION = typer.Option(
    None,
    "--store",
    envvar=STORE_ENV,
    help=f"The local store (SQLite file). Default: the user's data directory; or {STORE_ENV}.",
    show_default=False,
)
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead.")

CREDS_HELP = "Directory of credentials.json (or PERFFARM_CONFIG_DIR)."
CREDS_DIR_OPTION = typer.Option(None, "--creds-dir", help=CREDS_HELP, show_default=False)
ADMIN_HELP = "The server's admin token (or PERFFARM_ADMIN_TOKEN)."
# The options of every command that acts on a server as you (``acting_as``).
ACTING_SERVER_OPTION = typer.Option(
    None,
    "--server",
    "-s",
    help="Results server URL. Default: the one you signed in to last, else the registered one.",
    show_default=False,
)
ACTING_ADMIN_TOKEN_OPTION = typer.Option(
    None,
    "--admin-token",
    envvar="PERFFARM_ADMIN_TOKEN",
    help=ADMIN_HELP + " Default: you, signed in with `perffarm login`.",
    show_default=False,
)
DATABASE_HELP = "SQLite file path, or a postgresql://user@host/db URL."


def open_store(path: Path | str | None, *, usage: bool = False) -> "LocalStore":
    """The local store; a store that cannot be opened is a user error (exit 2 with usage)."""
    from perffarm.agent.store import LocalStore, StoreError
    from perffarm.console import UsageError, UserError

    try:
        return LocalStore(path)
    except StoreError as exc:
        raise (UsageError if usage else UserError)(str(exc)) from None


_PERCENT = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(%?)\s*$")


def parse_fraction(text: str, option: str) -> float:
    """``2%`` or ``0.02`` → 0.02. A bare number above 1 is refused as ambiguous."""
    from perffarm.console import UsageError

    match = _PERCENT.match(text)
    if not match:
        raise UsageError(f"{option} {text!r}: write a percentage like 2% (or a fraction, 0.02)")
    number = float(match.group(1))
    if match.group(2):
        number /= 100
    elif number > 1:
        raise UsageError(f"{option} {text!r}: did you mean {text}%? Write 5% or 0.05")
    if number < 0:
        raise UsageError(f"{option} {text!r} cannot be negative")
    return number


def parse_size(text: str, option: str) -> int:
    """``32MiB``, ``20GiB``, ``512k`` or a number of bytes; a usage error otherwise."""
    from perffarm.console import UsageError

    units = {"k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}
    units |= {"t": 1024**4, "tib": 1024**4, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
    lowered = text.strip().lower()
    for suffix in sorted(units, key=len, reverse=True):
        if lowered.endswith(suffix) and lowered[: -len(suffix)].strip().isdigit():
            return int(lowered[: -len(suffix)]) * units[suffix]
    if lowered.isdigit():
        return int(lowered)
    raise UsageError(f"{option} {text!r}: give a size such as 32MiB, 20GiB or 1048576")


def acting_as(
    server: str | None,
    creds_dir: str | None,
    admin_token: str | None,
    *,
    needed_for: str | None,
) -> tuple[str, str | None]:
    """The server a command calls and the credential it acts with, as on the web: the admin
    token when one is given, else the signed-in user's token (`perffarm login`, refreshed
    when due), else none. ``needed_for`` says what the command does when it needs one (a
    usage error without), None when it may call anonymously. Without --server: the server
    signed in to last, else the one this machine is registered with."""
    from perffarm.agent import login as flow
    from perffarm.client._core import normalize_server
    from perffarm.client.credentials import load_credentials
    from perffarm.client.errors import ClientError, NoCredentials
    from perffarm.console import UsageError, UserError

    url = normalize_server(server) if server else None
    try:
        signed_in = flow.load(creds_dir, url)
        if not admin_token and signed_in is not None:
            tokens = flow.current(creds_dir, signed_in.server)
            return tokens.server, tokens.access_token
        if url is None and signed_in is not None:
            url = signed_in.server
        if url is None:
            url = load_credentials(creds_dir).server
    except NoCredentials:
        raise UsageError(
            "give the server with --server URL (you are not signed in, and no machine is "
            "registered on this computer)"
        ) from None
    except ClientError as exc:
        raise UserError(str(exc)) from None
    if not admin_token and needed_for:
        raise UsageError(
            f"{needed_for} needs you signed in (`perffarm login --server {url}`) or the admin "
            "token (--admin-token or PERFFARM_ADMIN_TOKEN)"
        )
    return url, admin_token
