"""Server-side commands: `perffarm server` and `perffarm db ...`.

FastAPI, SQLAlchemy and uvicorn are imported inside the commands: an agent installed
without the server extra still runs `perffarm --help` and its own commands.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import typer

from perffarm.console import UsageError, UserError, console, err_console, print_json, require_extra

DEFAULT_ADDRESS = "127.0.0.1:8080"

db_app = typer.Typer(
    name="db",
    help="The results server's database.\n\nExample: perffarm db upgrade --database ./farm.db",
    no_args_is_help=True,
)

_DATABASE_HELP = "SQLite file path, or a postgresql://user@host/db URL."


def _need_server_extra() -> None:
    for module in ("fastapi", "uvicorn", "sqlalchemy", "alembic"):
        require_extra(module, "server")


def _parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--address {address!r}: give HOST:PORT, e.g. {DEFAULT_ADDRESS}")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def _parse_size(text: str) -> int:
    units = {"k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}
    lowered = text.strip().lower()
    for suffix in sorted(units, key=len, reverse=True):
        if lowered.endswith(suffix) and lowered[: -len(suffix)].strip().isdigit():
            return int(lowered[: -len(suffix)]) * units[suffix]
    if lowered.isdigit():
        return int(lowered)
    raise UsageError(f"--max-body {text!r}: give a size such as 32MiB or 1048576")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _open_and_migrate(database: str) -> tuple[Any, str | None, str]:
    """Engine of an up-to-date database, with the revisions before and after."""
    import sqlalchemy as sa

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
        raise UserError(f"{_safe_url(url)}: {exc}") from None
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(
            f"cannot open the database {_safe_url(url)}: {reason} (check --database)"
        ) from None
    return engine, before, after


def _grpc_options(
    address: str | None, cert: str | None, key: str | None, qps_machine: str | None
) -> tuple[str, int] | None:
    """The gRPC (host, port) after checking the gRPC options; None without --grpc-address."""
    if address is None:
        for name, value in (
            ("--grpc-tls-cert", cert),
            ("--grpc-tls-key", key),
            ("--grpc-qps-machine", qps_machine),
        ):
            if value:
                raise UsageError(f"{name} needs --grpc-address")
        return None
    for module in ("grpc", "grpc_health", "grpc_reflection", "google.protobuf"):
        require_extra(module, "grpc")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--grpc-address {address!r}: give HOST:PORT, e.g. 127.0.0.1:50051")
    if bool(cert) != bool(key):
        raise UsageError("--grpc-tls-cert and --grpc-tls-key go together: give both for TLS")
    for name, path in (("--grpc-tls-cert", cert), ("--grpc-tls-key", key)):
        if path:
            try:
                with open(path, "rb") as handle:
                    head = handle.read(4096)
            except OSError as exc:
                raise UsageError(f"{name} {path}: {exc.strerror or exc}") from None
            if b"-----BEGIN " not in head:
                raise UsageError(f"{name} {path}: not a PEM file")
    return host.strip("[]"), int(port)


def _check_port_free(host: str, port: int, flag: str = "--address") -> None:
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


def server(
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", "-a", help="HOST:PORT to listen on."),
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=_DATABASE_HELP
    ),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, help="Server processes (PostgreSQL only for more than 1)."
    ),
    admin_token: str | None = typer.Option(
        None,
        "--admin-token",
        envvar="PERFFARM_ADMIN_TOKEN",
        help="Token for admin actions. Without one, a token is generated on first start, "
        "printed once, and only its hash is kept in the database.",
        show_default=False,
    ),
    registration: str = typer.Option(
        "open",
        "--registration",
        envvar="PERFFARM_REGISTRATION",
        help="Who may register machines: 'open' (anyone; runs stay hidden until an admin "
        "approves the machine) or 'admin' (the admin token is needed).",
    ),
    max_body: str = typer.Option("32MiB", "--max-body", help="Largest request body accepted."),
    private: bool = typer.Option(
        False, "--private", envvar="PERFFARM_PRIVATE", help="Every read needs a signed-in user."
    ),
    oidc_config: str | None = typer.Option(
        None,
        "--oidc-config",
        help="JSON file: [{name, issuer, client_id, client_secret}].",
        show_default=False,
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    results_location: str | None = typer.Option(
        None,
        "--results-location",
        envvar="PERFFARM_LOADTEST_RESULTS",
        help="Folder where each finished load test is also written as ID.json, in the original "
        "harness's shape, e.g. --results-location ~/peer-performance-tests (unset: load tests "
        "are kept in the database only).",
        show_default=False,
    ),
    grpc_address: str | None = typer.Option(
        None,
        "--grpc-address",
        envvar="PERFFARM_GRPC_ADDRESS",
        help="Also serve gRPC (perffarm.v1, gRPC's QPS reporter, health, reflection) on "
        "HOST:PORT; needs the grpc extra. See docs/grpc.md.",
        show_default=False,
    ),
    grpc_tls_cert: str | None = typer.Option(
        None, "--grpc-tls-cert", help="PEM certificate chain: gRPC over TLS (with --grpc-tls-key)."
    ),
    grpc_tls_key: str | None = typer.Option(
        None, "--grpc-tls-key", help="PEM private key of --grpc-tls-cert."
    ),
    grpc_qps_machine: str | None = typer.Option(
        None,
        "--grpc-qps-machine",
        help="Store QPS driver reports sent without credentials as runs of this registered "
        "machine (qps_json_driver sends none); without it they are refused.",
        show_default=False,
    ),
) -> None:
    """Run the results server (HTTP API under /api/v1, OpenAPI at /api/v1/openapi.json).

    Example: perffarm server --address 127.0.0.1:8080 --database ./farm.db

    At scale: perffarm server --address 0.0.0.0:8080 --database postgresql://u@h/farm --workers 4

    With gRPC: perffarm server --address 127.0.0.1:8080 --grpc-address 127.0.0.1:50051
    """
    _need_server_extra()
    import uvicorn

    from perffarm.server.settings import REGISTRATION_MODES, Settings
    from perffarm.server.store.server_settings import ensure_admin_token

    host, port = _parse_address(address)
    grpc_listen = _grpc_options(grpc_address, grpc_tls_cert, grpc_tls_key, grpc_qps_machine)
    if registration not in REGISTRATION_MODES:
        raise UsageError(
            f"--registration {registration!r}: choose one of {', '.join(REGISTRATION_MODES)}"
        )
    from pathlib import Path

    from perffarm.server.settings import load_oidc_providers

    try:
        providers = load_oidc_providers(Path(oidc_config).read_text()) if oidc_config else ()
    except (OSError, ValueError) as exc:
        raise UsageError(f"--oidc-config {oidc_config}: {exc}") from None
    settings = Settings(
        database=database,
        max_body=_parse_size(max_body),
        registration=registration,
        admin_token=admin_token,
        private=private,
        oidc_providers=providers,
        grpc_address=grpc_address,
        grpc_tls_cert=grpc_tls_cert,
        grpc_tls_key=grpc_tls_key,
        grpc_qps_machine=grpc_qps_machine,
    )
    engine, before, after = _open_and_migrate(database)
    if engine.dialect.name == "sqlite" and workers > 1:
        raise UsageError(
            "--workers above 1 needs PostgreSQL: SQLite has a single writer, and one server "
            "process already uses it fully (use --database postgresql://...)"
        )
    _check_port_free(host, port)
    if grpc_listen is not None:
        if grpc_listen == (host, port):
            raise UsageError("--grpc-address must differ from --address")
        _check_port_free(*grpc_listen, flag="--grpc-address")
    _, generated = ensure_admin_token(engine, admin_token)
    engine.dispose()
    if before != after:
        err_console.print(
            f"database {_safe_url(settings.url)}: schema {before or 'empty'} -> {after}"
        )
    if generated:
        err_console.print(
            "[bold]admin token (shown only this once; keep it, e.g. in PERFFARM_ADMIN_TOKEN):[/]"
        )
        console.print(generated)
    os.environ.update(settings.to_env())
    if results_location:
        folder = Path(results_location).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--results-location {folder}: {exc.strerror or exc}") from None
        os.environ["PERFFARM_LOADTEST_RESULTS"] = str(folder.resolve())
    uvicorn.run(
        "perffarm.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        log_level=log_level,
        # Agents keep one connection open across a probe and an upload.
        timeout_keep_alive=30,
    )


@db_app.command("upgrade")
def db_upgrade(
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=_DATABASE_HELP
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the revisions as JSON."),
) -> None:
    """Bring the database's schema up to date (the server does this on start, too).

    Example: perffarm db upgrade --database postgresql://perffarm@db.example.org/farm
    """
    _need_server_extra()
    engine, before, after = _open_and_migrate(database)
    engine.dispose()
    if as_json:
        print_json({"before": before, "after": after})
    elif before == after:
        console.print(f"the database is up to date (schema {after})")
    else:
        console.print(f"upgraded the database: schema {before or 'empty'} -> {after}")


@db_app.command("reset-admin-token")
def db_reset_admin_token(
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=_DATABASE_HELP
    ),
) -> None:
    """Make a new admin token (printed once) and forget the old one; restart the server after.

    Example: perffarm db reset-admin-token --database ./farm.db
    """
    _need_server_extra()
    from perffarm.server.store.server_settings import reset_admin_token

    engine, _, _ = _open_and_migrate(database)
    token = reset_admin_token(engine)
    engine.dispose()
    err_console.print("[bold]new admin token (shown only this once):[/]")
    console.print(token)


user_app = typer.Typer(
    name="user",
    help="Users of the results server (admin).\n\nExample: perffarm user add alice --admin "
    "--password-stdin --database ./farm.db",
    no_args_is_help=True,
)


def _user_call(database: str | None, server_url: str | None, token: str | None, action, remote):  # type: ignore[no-untyped-def]
    """Run against the database directly, or through the API with an admin token."""
    if server_url:
        import httpx

        if not token:
            raise UsageError("--server needs --admin-token (or PERFFARM_ADMIN_TOKEN)")
        method, path, body = remote
        try:
            answer = httpx.request(
                method,
                server_url.rstrip("/") + "/api/v1" + path,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise UserError(f"cannot reach {server_url}: {exc}") from None
        if answer.status_code >= 400:
            try:
                detail = answer.json().get("detail")
            except ValueError:
                detail = f"HTTP {answer.status_code}"
            raise UserError(f"the server refused: {detail}")
        return answer.json()
    _need_server_extra()
    from perffarm.server.core.errors import PerffarmError
    from perffarm.server.store import users

    engine, _, _ = _open_and_migrate(database or "./farm.db")
    try:
        with engine.connect() as conn:
            return action(conn, users)
    except PerffarmError as exc:
        raise UserError(str(exc)) from None
    finally:
        engine.dispose()


_USER_DB = typer.Option(None, "--database", "-d", envvar="PERFFARM_DATABASE", help=_DATABASE_HELP)
_USER_SERVER = typer.Option(None, "--server", help="Use the API of this server instead.")
_USER_TOKEN = typer.Option(
    None, "--admin-token", envvar="PERFFARM_ADMIN_TOKEN", help="For --server."
)


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="User name: letters, digits, '.', '_', '-'."),
    admin: bool = typer.Option(False, "--admin", help="Make the user an admin."),
    display_name: str | None = typer.Option(None, "--display-name", help="Shown on pages."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read a password."),
    database: str | None = _USER_DB,
    server_url: str | None = _USER_SERVER,
    token: str | None = _USER_TOKEN,
) -> None:
    """Add a local account (a password read from stdin lets it sign in on the web).

    Example: perffarm user add alice --admin --password-stdin --database ./farm.db
    """
    import sys

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password is not None and len(password) < 8:
        raise UsageError("the password needs at least 8 characters")
    made = _user_call(
        database,
        server_url,
        token,
        lambda conn, users: (
            users.create(conn, name, display_name=display_name, password=password, is_admin=admin)
            .admin_view()
            .model_dump(mode="json")
        ),
        (
            "POST",
            "/users",
            {"name": name, "display_name": display_name, "password": password, "is_admin": admin},
        ),
    )
    console.print(f"added user {made['name']}{' (admin)' if made['is_admin'] else ''}")


@user_app.command("list")
def user_list(
    as_json: bool = typer.Option(False, "--json", help="Print the users as JSON."),
    database: str | None = _USER_DB,
    server_url: str | None = _USER_SERVER,
    token: str | None = _USER_TOKEN,
) -> None:
    """List users (never their emails).

    Example: perffarm user list --json --database ./farm.db
    """
    items = _user_call(
        database,
        server_url,
        token,
        lambda conn, users: {
            "items": [u.admin_view().model_dump(mode="json") for u in users.listing(conn)]
        },
        ("GET", "/users", None),
    )["items"]
    if as_json:
        print_json(items)
        return
    for u in items:
        state = "disabled" if u["disabled"] else ("waiting" if not u["approved"] else "active")
        console.print(
            f"{u['name']:<20} {u['display_name']:<30} {u['provider']:<10} {state}"
            f"{'  admin' if u['is_admin'] else ''}"
        )


@user_app.command("disable")
def user_disable(
    name: str = typer.Argument(..., help="The user to disable."),
    database: str | None = _USER_DB,
    server_url: str | None = _USER_SERVER,
    token: str | None = _USER_TOKEN,
) -> None:
    """Disable a user: sessions end, tokens and their machines' secrets are refused.

    Example: perffarm user disable bob --database ./farm.db
    """
    _user_call(
        database,
        server_url,
        token,
        lambda conn, users: (
            users.set_flags(conn, name, disabled=True).admin_view().model_dump(mode="json")
        ),
        ("POST", f"/users/{name}/disable", None),
    )
    console.print(f"disabled user {name}")


@user_app.command("approve")
def user_approve(
    name: str = typer.Argument(..., help="The user to approve."),
    database: str | None = _USER_DB,
    server_url: str | None = _USER_SERVER,
    token: str | None = _USER_TOKEN,
) -> None:
    """Approve a user who signed in through a provider (with --user-approval admin).

    Example: perffarm user approve bob --database ./farm.db
    """
    _user_call(
        database,
        server_url,
        token,
        lambda conn, users: (
            users.set_flags(conn, name, approved=True).admin_view().model_dump(mode="json")
        ),
        ("POST", f"/users/{name}/approve", None),
    )
    console.print(f"approved user {name}")


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `perffarm` app."""
    app.command("server")(server)
    app.add_typer(db_app)
    app.add_typer(user_app)
