"""The `perffarm` command: the root app, every command group registered in one place.

One module per command group; each is thin (options, a call into the library, printing)
and imports at module level only typer and perffarm.commands._shared / _serving, so that
`perffarm --help` and `perffarm --version` build the whole command tree without importing
pydantic, numpy, httpx, SQLAlchemy, rich or any of perffarm's library packages: the agent,
the analysis, the server are imported inside the command that runs
(tests/commands/test_startup.py keeps it so; benchmarks/cli_startup.py measures it).

The command modules do not use ``from __future__ import annotations``: typer reads each
command's annotations with typing.get_type_hints, which compiles every string annotation
(~10 ms for the whole tree); names imported only for type checking are quoted instead.

Help is plain click help (``rich_markup_mode=None``): typer's rich help imports rich's
markdown, traceback and syntax modules, about 80 ms, more than the whole start-up budget.
"""

import os
import sys

import typer

from perffarm import __version__
from perffarm.commands import (
    agent,
    changepoints,
    check,
    compare,
    data,
    db,
    documents,
    ingest,
    loadtest,
    login,
    machine,
    prune,
    runs,
    server,
    token,
    upload,
    user,
)
from perffarm.commands._shared import HelpGroup

# The exit code of a wrong command line: perffarm.console.EXIT_USAGE, which imports rich.
EXIT_USAGE = 2

app = typer.Typer(
    name="perffarm",
    help=(
        "A self-hosted performance farm: measure benchmarks, describe the machine, keep and "
        "compare the results.\n\nExample: perffarm run examples/suite.yaml"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=HelpGroup,
    # Help as wide as the terminal (click stops at 80 columns by default), as rich did.
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 200},
)


def _version(value: bool) -> None:
    if value:
        print(f"perffarm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """perffarm: comparable performance results across changes, branches and machines."""


# The order of `perffarm --help`.
app.command("run")(runs.run_command)
app.command("runs")(runs.runs_command)
app.command("show")(runs.show_command)
app.command("export")(documents.export_command)
app.command("import")(documents.import_command)
app.command("prune")(prune.prune_command)
app.command("system")(runs.system_command)
app.command("schema")(documents.schema_command)
app.command("agent")(agent.agent_command)
app.command("upload")(upload.upload_command)
app.add_typer(machine.app)
app.command("login")(login.login_command)
app.command("logout")(login.logout_command)
app.command("whoami")(login.whoami_command)
app.add_typer(token.app)
app.command("ingest")(ingest.ingest_command)
app.command("formats")(ingest.formats_command)
app.command("changepoints")(changepoints.changepoints_command)
app.command("compare")(compare.compare_command)
app.command("check")(check.check_command)
app.command("server")(server.server_command)
app.add_typer(db.app)
app.add_typer(data.app)
app.add_typer(user.app)
app.add_typer(loadtest.app)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; user errors become one line on stderr and an exit code."""
    command = typer.main.get_command(app)
    try:
        # Without standalone mode, click hands back the code of a typer.Exit as the result.
        outcome = command.main(args=argv, prog_name="perffarm", standalone_mode=False)
        if isinstance(outcome, int):
            return outcome
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        _report("aborted")
        return 130
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            # `perffarm` or `perffarm machine` alone: the help (its message) and exit code 2.
            print(exc.format_message())
            return EXIT_USAGE
        # Unknown flags and bad arguments (typer's click errors): one line and a pointer to --help.
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _report(f"{message} (see `perffarm {_subcommand(argv)}--help`)")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _report("interrupted")
        return 130
    except Exception as exc:
        # A UserError: perffarm.console is loaded already, since something raised one.
        from perffarm.console import UserError

        if not isinstance(exc, UserError):
            raise
        _report(str(exc))
        return exc.exit_code
    return 0


def _report(message: str) -> None:
    from perffarm.console import report_error

    report_error(message)


def _subcommand(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    words = [a for a in args if not a.startswith("-")][:1]
    return f"{words[0]} " if words else ""


# Everything a perffarm process writes is its user's alone: stores, pending runs, logs,
# builds, credentials, temporary folders, the server's SQLite database, and what the
# commands it starts write (build steps, git, initdb). One umask at the start of the process
# covers them all, the files of child processes included, which no per-writer chmod could.
PRIVATE_UMASK = 0o077


def run() -> None:
    """Console-script entry point (also ``python -m perffarm.commands``)."""
    os.umask(PRIVATE_UMASK)
    sys.exit(main())
