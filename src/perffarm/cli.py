"""The `perffarm` command. Thin: each part of perffarm registers its own subcommands."""

from __future__ import annotations

import sys

import typer

from perffarm import __version__
from perffarm.console import EXIT_USAGE, UserError, report_error

app = typer.Typer(
    name="perffarm",
    help=(
        "A self-hosted performance farm: measure benchmarks, describe the machine, keep and "
        "compare the results.\n\nExample: perffarm run examples/suite.yaml"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
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


def _register_all() -> None:
    from perffarm.adapters import cli as adapters_cli
    from perffarm.agent import agent_cli as unattended_cli
    from perffarm.agent import cli as agent_cli
    from perffarm.agent import login_cli, upload_cli
    from perffarm.analysis import cli as analysis_cli
    from perffarm.loadtest import cli as loadtest_cli
    from perffarm.server import cli as server_cli

    parts = (agent_cli, unattended_cli, upload_cli, login_cli, adapters_cli, analysis_cli)
    for part in (*parts, server_cli, loadtest_cli):
        part.register(app)


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Run the command line; user errors become one line on stderr and an exit code."""
    command = typer.main.get_command(app)
    try:
        # Without standalone mode, click hands back the code of a typer.Exit as the result.
        outcome = command.main(args=argv, prog_name="perffarm", standalone_mode=False)
        if isinstance(outcome, int):
            return outcome
    except UserError as exc:
        report_error(str(exc))
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        report_error("aborted")
        return 130
    except typer.TyperException as exc:
        # Unknown flags and bad arguments (typer's click errors): one line and a pointer to --help.
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        report_error(f"{message} (see `perffarm {_subcommand(argv)}--help`)")
        return EXIT_USAGE
    except KeyboardInterrupt:
        report_error("interrupted")
        return 130
    return 0


def _subcommand(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    words = [a for a in args if not a.startswith("-")][:1]
    return f"{words[0]} " if words else ""


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
