"""What the two server commands share (`perffarm server` and `perffarm loadtest server`),
and `perffarm db` and `perffarm user`: the server extra, addresses, ports, the database.

FastAPI, SQLAlchemy and uvicorn are imported inside the functions: an agent installed
without the server extra still runs `perffarm --help` and its own commands.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

DEFAULT_ADDRESS = "127.0.0.1:8080"


def need_server_extra(*modules: str) -> None:
    """Fail with the pip command when the server extra is not installed."""
    from perffarm.console import require_extra

    for module in modules or ("fastapi", "uvicorn", "sqlalchemy", "alembic"):
        require_extra(module, "server")


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets) → (host, port); an empty host is 0.0.0.0."""
    from perffarm.console import UsageError

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--address {address!r}: give HOST:PORT, e.g. {DEFAULT_ADDRESS}")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def check_port_free(host: str, port: int, flag: str = "--address") -> None:
    """Refuse at once, in one line, when another process listens on the port already."""
    import socket

    from perffarm.console import UserError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                f"(is another server running there? choose another {flag})"
            ) from None


def safe_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_and_migrate(database: str) -> "tuple[Engine, str | None, str]":
    """Engine of an up-to-date database, with the revisions before and after."""
    import sqlalchemy as sa

    from perffarm.console import UsageError, UserError
    from perffarm.server.settings import database_url
    from perffarm.server.store import migrate
    from perffarm.server.store.engine import make_engine

    try:
        url = database_url(database)
    except ValueError as exc:
        raise UsageError(f"--database: {exc}") from None
    engine = make_engine(url, pool_size=2)
    try:
        before, after = migrate.upgrade(engine)
    except migrate.DatabaseTooNew as exc:
        raise UserError(f"{safe_url(url)}: {exc}") from None
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(
            f"cannot open the database {safe_url(url)}: {reason} (check --database)"
        ) from None
    return engine, before, after
