"""`perffarm server`: run the results server."""

import typer

from perffarm.commands._serving import (
    DEFAULT_ADDRESS,
    check_port_free,
    need_server_extra,
    open_and_migrate,
    parse_address,
    safe_url,
)
from perffarm.commands._shared import DATABASE_HELP, parse_size


def _grpc_options(
    address: str | None, cert: str | None, key: str | None, qps_machine: str | None
) -> tuple[str, int] | None:
    """The gRPC (host, port) after checking the gRPC options; None without --grpc-address."""
    from perffarm.console import UsageError, require_extra

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


def server_command(
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", "-a", help="HOST:PORT to listen on."),
    database: str = typer.Option(
        "./farm.db", "--database", "-d", envvar="PERFFARM_DATABASE", help=DATABASE_HELP
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
    keep_samples: str | None = typer.Option(
        None,
        "--keep-samples",
        envvar="PERFFARM_KEEP_SAMPLES",
        help="Keep raw samples and attachments this long (90d, 12w, 1y); older runs keep "
        "their summaries. Default: forever.",
        show_default=False,
    ),
    keep_datapoints: str | None = typer.Option(
        None,
        "--keep-datapoints",
        envvar="PERFFARM_KEEP_DATAPOINTS",
        help="Keep load-test datapoints this long after a test finished. Default: forever.",
        show_default=False,
    ),
) -> None:
    """Run the results server (HTTP API under /api/v1, OpenAPI at /api/v1/openapi.json).

    Example: perffarm server --address 127.0.0.1:8080 --database ./farm.db

    At scale: perffarm server --address 0.0.0.0:8080 --database postgresql://u@h/farm --workers 4

    With gRPC: perffarm server --address 127.0.0.1:8080 --grpc-address 127.0.0.1:50051

    With retention: perffarm server --database ./farm.db --keep-samples 90d --keep-datapoints 30d
    """
    need_server_extra()
    import os
    from pathlib import Path

    import uvicorn

    from perffarm.console import UsageError, UserError, console, err_console
    from perffarm.server.settings import REGISTRATION_MODES, Settings, load_oidc_providers
    from perffarm.server.store.server_settings import ensure_admin_token

    host, port = parse_address(address)
    grpc_listen = _grpc_options(grpc_address, grpc_tls_cert, grpc_tls_key, grpc_qps_machine)
    if registration not in REGISTRATION_MODES:
        raise UsageError(
            f"--registration {registration!r}: choose one of {', '.join(REGISTRATION_MODES)}"
        )
    try:
        providers = load_oidc_providers(Path(oidc_config).read_text()) if oidc_config else ()
    except (OSError, ValueError) as exc:
        raise UsageError(f"--oidc-config {oidc_config}: {exc}") from None
    from perffarm.model.lifecycle import FOREVER, format_retention, parse_retention

    retention = {}
    for flag, value in (("--keep-samples", keep_samples), ("--keep-datapoints", keep_datapoints)):
        try:
            retention[flag] = format_retention(parse_retention(value or FOREVER))
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None
    settings = Settings(
        keep_samples=retention["--keep-samples"],
        keep_datapoints=retention["--keep-datapoints"],
        database=database,
        max_body=parse_size(max_body, "--max-body"),
        registration=registration,
        admin_token=admin_token,
        private=private,
        oidc_providers=providers,
        grpc_address=grpc_address,
        grpc_tls_cert=grpc_tls_cert,
        grpc_tls_key=grpc_tls_key,
        grpc_qps_machine=grpc_qps_machine,
    )
    engine, before, after = open_and_migrate(database)
    if engine.dialect.name == "sqlite" and workers > 1:
        raise UsageError(
            "--workers above 1 needs PostgreSQL: SQLite has a single writer, and one server "
            "process already uses it fully (use --database postgresql://...)"
        )
    check_port_free(host, port)
    if grpc_listen is not None:
        if grpc_listen == (host, port):
            raise UsageError("--grpc-address must differ from --address")
        check_port_free(*grpc_listen, flag="--grpc-address")
    _, generated = ensure_admin_token(engine, admin_token)
    engine.dispose()
    if before != after:
        err_console.print(
            f"database {safe_url(settings.url)}: schema {before or 'empty'} -> {after}"
        )
    if generated:
        err_console.print(
            "admin token (shown only this once; keep it, e.g. in PERFFARM_ADMIN_TOKEN):",
            style="bold",
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
