"""Server settings: from the command line, or from the environment in worker processes.

``perffarm server --workers N`` starts N uvicorn processes; each builds its app from
``PERFFARM_SERVER_*`` variables that the command sets, so every worker sees the same
settings without pickling anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from perffarm.loadtest.summary import DEFAULT_MISSING_AFTER_MS

DEFAULT_DATABASE = "./farm.db"
DEFAULT_MAX_BODY = 32 * 1024 * 1024
REGISTRATION_MODES = ("open", "admin")

_ENV_DATABASE = "PERFFARM_SERVER_DATABASE"
_ENV_MAX_BODY = "PERFFARM_SERVER_MAX_BODY"
_ENV_REGISTRATION = "PERFFARM_REGISTRATION"
ADMIN_TOKEN_ENV = "PERFFARM_ADMIN_TOKEN"
PRIVATE_ENV = "PERFFARM_PRIVATE"
_ENV_OIDC = "PERFFARM_SERVER_OIDC"
_ENV_DEVICE_INTERVAL = "PERFFARM_SERVER_DEVICE_INTERVAL"
_ENV_USER_APPROVAL = "PERFFARM_USER_APPROVAL"
USER_APPROVAL_MODES = ("auto", "admin")
_ENV_GRPC_ADDRESS = "PERFFARM_SERVER_GRPC_ADDRESS"
_ENV_GRPC_TLS_CERT = "PERFFARM_SERVER_GRPC_TLS_CERT"
_ENV_GRPC_TLS_KEY = "PERFFARM_SERVER_GRPC_TLS_KEY"
_ENV_GRPC_QPS_MACHINE = "PERFFARM_SERVER_GRPC_QPS_MACHINE"

ENV_RESULTS = "PERFFARM_LOADTEST_RESULTS"
ENV_COMPAT_AUTH = "PERFFARM_LOADTEST_COMPAT_AUTH"
ENV_TOKEN = "PERFFARM_LOADTEST_TOKEN"
ENV_INFLUX = "PERFFARM_LOADTEST_INFLUX"
ENV_INFLUX_DB = "PERFFARM_LOADTEST_INFLUX_DB"
ENV_MISSING_AFTER = "PERFFARM_LOADTEST_MISSING_AFTER"
ENV_CHECK_EVERY = "PERFFARM_LOADTEST_CHECK_EVERY"
LOADTEST_TOKEN_HEADER = "X-Perffarm-Loadtest-Token"
COMPAT_AUTH_MODES = ("open", "token")
#: How often running tests' ``abortOnFail`` thresholds are checked (the stats interval).
DEFAULT_CHECK_EVERY = 2.0


@dataclass(frozen=True)
class OidcProvider:
    """One OpenID Connect provider users may sign in with."""

    name: str
    issuer: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    label: str = ""
    scopes: str = "openid email profile"

    @classmethod
    def from_dict(cls, data: dict) -> OidcProvider:
        missing = [k for k in ("name", "issuer", "client_id") if not data.get(k)]
        if missing:
            raise ValueError(f"an OIDC provider needs {', '.join(missing)}")
        unknown = set(data) - {"name", "issuer", "client_id", "client_secret", "label", "scopes"}
        if unknown:
            raise ValueError(f"unknown OIDC provider keys: {', '.join(sorted(unknown))}")
        return cls(**{k: str(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "label": self.label,
            "scopes": self.scopes,
        }


def load_oidc_providers(text: str) -> tuple[OidcProvider, ...]:
    """Providers from JSON: a list of {name, issuer, client_id, client_secret, label}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the OIDC providers are not valid JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ValueError("the OIDC providers must be a JSON list of objects")
    providers = tuple(OidcProvider.from_dict(d) for d in data)
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ValueError("two OIDC providers have the same name")
    return providers


def database_url(value: str) -> str:
    """A SQLAlchemy URL from what a user types: a file path or a database URL.

    ``postgresql://`` and ``postgres://`` get the psycopg 3 driver, which is what perffarm
    installs; a plain path becomes a SQLite file URL.
    """
    value = value.strip()
    for prefix in ("postgresql://", "postgres://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    if value.startswith(("postgresql+", "sqlite:")):
        return value
    if "://" in value:
        raise ValueError(
            f"unsupported database {value!r}: give a SQLite file path or a postgresql:// URL"
        )
    return "sqlite:///" + str(Path(value).expanduser().resolve())


@dataclass(frozen=True)
class Settings:
    database: str = DEFAULT_DATABASE
    max_body: int = DEFAULT_MAX_BODY
    registration: str = "open"
    #: The admin token given on the command line or in the environment. When None, the
    #: token whose hash is stored in the database is the admin token.
    admin_token: str | None = None
    #: A private farm: every read needs a signed-in user or a token with the read scope.
    private: bool = False
    oidc_providers: tuple[OidcProvider, ...] = ()
    #: Seconds a device-flow client waits between polls (RFC 8628 ``interval``).
    device_interval: int = field(
        default_factory=lambda: int(os.environ.get(_ENV_DEVICE_INTERVAL, "5"))
    )
    #: Users created by an OIDC sign-in: usable at once ('auto') or after an admin approves.
    user_approval: str = "auto"
    #: HOST:PORT of the gRPC services (server/grpc/); None: no gRPC.
    grpc_address: str | None = None
    #: PEM certificate chain and private key: gRPC over TLS when both are given.
    grpc_tls_cert: str | None = None
    grpc_tls_key: str | None = None
    #: The machine that QPS driver reports without credentials are stored for (or None:
    #: such reports are refused).
    grpc_qps_machine: str | None = None

    @property
    def url(self) -> str:
        return database_url(self.database)

    def to_env(self) -> dict[str, str]:
        env = {
            _ENV_DATABASE: self.database,
            _ENV_MAX_BODY: str(self.max_body),
            _ENV_REGISTRATION: self.registration,
        }
        if self.admin_token:
            env[ADMIN_TOKEN_ENV] = self.admin_token
        env[PRIVATE_ENV] = "1" if self.private else "0"
        env[_ENV_OIDC] = json.dumps([p.to_dict() for p in self.oidc_providers])
        env[_ENV_DEVICE_INTERVAL] = str(self.device_interval)
        env[_ENV_USER_APPROVAL] = self.user_approval
        for name, value in (
            (_ENV_GRPC_ADDRESS, self.grpc_address),
            (_ENV_GRPC_TLS_CERT, self.grpc_tls_cert),
            (_ENV_GRPC_TLS_KEY, self.grpc_tls_key),
            (_ENV_GRPC_QPS_MACHINE, self.grpc_qps_machine),
        ):
            env[name] = value or ""
        return env

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database=os.environ.get(_ENV_DATABASE, DEFAULT_DATABASE),
            max_body=int(os.environ.get(_ENV_MAX_BODY, DEFAULT_MAX_BODY)),
            registration=os.environ.get(_ENV_REGISTRATION, "open"),
            admin_token=os.environ.get(ADMIN_TOKEN_ENV) or None,
            private=os.environ.get(PRIVATE_ENV, "") in ("1", "true", "yes"),
            oidc_providers=load_oidc_providers(os.environ.get(_ENV_OIDC) or "[]"),
            device_interval=int(os.environ.get(_ENV_DEVICE_INTERVAL, "5")),
            user_approval=os.environ.get(_ENV_USER_APPROVAL, "auto"),
            grpc_address=os.environ.get(_ENV_GRPC_ADDRESS) or None,
            grpc_tls_cert=os.environ.get(_ENV_GRPC_TLS_CERT) or None,
            grpc_tls_key=os.environ.get(_ENV_GRPC_TLS_KEY) or None,
            grpc_qps_machine=os.environ.get(_ENV_GRPC_QPS_MACHINE) or None,
        )


@dataclass(frozen=True)
class LoadTestSettings:
    """Read from ``PERFFARM_LOADTEST_*`` so that every uvicorn worker process agrees."""

    results_location: Path | None = None
    compat_auth: str = "open"
    token: str | None = None
    influx_url: str | None = None
    influx_db: str = "comms"
    missing_after_ms: int = DEFAULT_MISSING_AFTER_MS
    #: Seconds between checks of running tests' ``abortOnFail`` thresholds.
    check_every: float = DEFAULT_CHECK_EVERY

    @classmethod
    def from_env(cls) -> LoadTestSettings:
        results = os.environ.get(ENV_RESULTS) or None
        return cls(
            results_location=Path(results).expanduser() if results else None,
            compat_auth=os.environ.get(ENV_COMPAT_AUTH, "open"),
            token=os.environ.get(ENV_TOKEN) or None,
            influx_url=os.environ.get(ENV_INFLUX) or None,
            influx_db=os.environ.get(ENV_INFLUX_DB) or "comms",
            missing_after_ms=int(
                float(os.environ.get(ENV_MISSING_AFTER) or DEFAULT_MISSING_AFTER_MS / 1000) * 1000
            ),
            check_every=float(os.environ.get(ENV_CHECK_EVERY) or DEFAULT_CHECK_EVERY),
        )

    def to_env(self) -> dict[str, str]:
        env = {ENV_COMPAT_AUTH: self.compat_auth, ENV_INFLUX_DB: self.influx_db}
        if self.results_location is not None:
            env[ENV_RESULTS] = str(self.results_location)
        if self.token:
            env[ENV_TOKEN] = self.token
        if self.influx_url:
            env[ENV_INFLUX] = self.influx_url
        return env

    def check(self) -> None:
        if self.compat_auth not in COMPAT_AUTH_MODES:
            raise ValueError(f"load-test compat auth must be one of {', '.join(COMPAT_AUTH_MODES)}")
