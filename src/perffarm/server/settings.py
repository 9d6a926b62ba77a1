"""Server settings: given by the command line, or read from the environment.

``perffarm server --workers N`` starts N uvicorn processes; each builds its app from the
``PERFFARM_*`` variables the command sets (``to_env``), so every worker sees the same
settings without pickling anything. Values given when a settings object is made win over
the environment; an empty variable counts as unset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from perffarm.model.lifecycle import FOREVER, RetentionPolicy, format_retention, parse_retention
from perffarm.model.loadtest import DEFAULT_MISSING_AFTER_MS

DEFAULT_DATABASE = "./farm.db"
DEFAULT_MAX_BODY = 32 * 1024 * 1024
REGISTRATION_MODES = ("open", "admin")
USER_APPROVAL_MODES = ("auto", "admin")
COMPAT_AUTH_MODES = ("open", "token")
ADMIN_TOKEN_ENV = "PERFFARM_ADMIN_TOKEN"
PRIVATE_ENV = "PERFFARM_PRIVATE"
LOADTEST_TOKEN_HEADER = "X-Perffarm-Loadtest-Token"
#: How often running tests' ``abortOnFail`` thresholds are checked (the stats interval).
DEFAULT_CHECK_EVERY = 2.0


def _env(name: str) -> Any:
    """A field read from the environment variable ``name`` (and given by its own name)."""
    return AliasChoices(name)


class OidcProvider(BaseModel):
    """One OpenID Connect provider users may sign in with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    issuer: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: str = Field(default="", repr=False)
    label: str = ""
    scopes: str = "openid email profile"

    @classmethod
    def from_dict(cls, data: dict) -> OidcProvider:
        missing = [k for k in ("name", "issuer", "client_id") if not data.get(k)]
        if missing:
            raise ValueError(f"an OIDC provider needs {', '.join(missing)}")
        unknown = set(data) - set(cls.model_fields)
        if unknown:
            raise ValueError(f"unknown OIDC provider keys: {', '.join(sorted(unknown))}")
        return cls(**{k: str(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, str]:
        return self.model_dump()


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


class _FromEnvironment(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, populate_by_name=True, env_ignore_empty=True, extra="ignore"
    )

    def to_env(self) -> dict[str, str]:
        """The environment a worker process needs to build the same settings."""
        env = {}
        for name, info in type(self).model_fields.items():
            alias = info.validation_alias
            assert isinstance(alias, AliasChoices)
            variable = str(alias.choices[0])
            value = getattr(self, name)
            if value is None:
                env[variable] = ""
            elif isinstance(value, bool):
                env[variable] = "1" if value else "0"
            elif isinstance(value, tuple):
                env[variable] = json.dumps([item.model_dump() for item in value])
            else:
                env[variable] = str(value)
        return env

    @classmethod
    def from_env(cls) -> Any:
        return cls()


class Settings(_FromEnvironment):
    database: str = Field(DEFAULT_DATABASE, validation_alias=_env("PERFFARM_SERVER_DATABASE"))
    max_body: int = Field(DEFAULT_MAX_BODY, gt=0, validation_alias=_env("PERFFARM_SERVER_MAX_BODY"))
    registration: Literal["open", "admin"] = Field(
        "open", validation_alias=_env("PERFFARM_REGISTRATION")
    )
    #: The admin token given on the command line or in the environment. When None, the
    #: token whose hash is stored in the database is the admin token.
    admin_token: str | None = Field(None, validation_alias=_env(ADMIN_TOKEN_ENV), repr=False)
    #: A private farm: every read needs a signed-in user or a token with the read scope.
    private: bool = Field(False, validation_alias=_env(PRIVATE_ENV))
    oidc_providers: tuple[OidcProvider, ...] = Field(
        (), validation_alias=_env("PERFFARM_SERVER_OIDC")
    )
    #: Seconds a device-flow client waits between polls (RFC 8628 ``interval``).
    device_interval: int = Field(
        5, ge=1, le=3600, validation_alias=_env("PERFFARM_SERVER_DEVICE_INTERVAL")
    )
    #: Users created by an OIDC sign-in: usable at once ('auto') or after an admin approves.
    user_approval: Literal["auto", "admin"] = Field(
        "auto", validation_alias=_env("PERFFARM_USER_APPROVAL")
    )
    #: HOST:PORT of the gRPC services (server/grpc/); None: no gRPC.
    grpc_address: str | None = Field(None, validation_alias=_env("PERFFARM_SERVER_GRPC_ADDRESS"))
    #: PEM certificate chain and private key: gRPC over TLS when both are given.
    grpc_tls_cert: str | None = Field(None, validation_alias=_env("PERFFARM_SERVER_GRPC_TLS_CERT"))
    grpc_tls_key: str | None = Field(None, validation_alias=_env("PERFFARM_SERVER_GRPC_TLS_KEY"))
    #: The machine that QPS driver reports without credentials are stored for (or None:
    #: such reports are refused).
    grpc_qps_machine: str | None = Field(
        None, validation_alias=_env("PERFFARM_SERVER_GRPC_QPS_MACHINE")
    )

    #: How long raw samples and attachments, and load-test datapoints, are kept
    #: (``90d``, ``12w``, ``1y`` or ``forever``); see model/lifecycle.py.
    keep_samples: str = Field(FOREVER, validation_alias=_env("PERFFARM_KEEP_SAMPLES"))
    keep_datapoints: str = Field(FOREVER, validation_alias=_env("PERFFARM_KEEP_DATAPOINTS"))
    #: Seconds between the server's retention passes (expired sign-in rows go, too).
    retention_interval: float = Field(
        86400.0, gt=0, validation_alias=_env("PERFFARM_RETENTION_INTERVAL")
    )

    @field_validator("keep_samples", "keep_datapoints")
    @classmethod
    def _retention(cls, value: str) -> str:
        return format_retention(parse_retention(value))

    @property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(keep_samples=self.keep_samples, keep_datapoints=self.keep_datapoints)

    @field_validator("oidc_providers", mode="before")
    @classmethod
    def _providers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return load_oidc_providers(value or "[]")
        if isinstance(value, list | tuple):
            return tuple(OidcProvider.from_dict(v) if isinstance(v, dict) else v for v in value)
        return value

    @property
    def url(self) -> str:
        return database_url(self.database)


class LoadTestSettings(_FromEnvironment):
    """The load-test part of the server (``PERFFARM_LOADTEST_*``)."""

    results_location: Path | None = Field(None, validation_alias=_env("PERFFARM_LOADTEST_RESULTS"))
    compat_auth: Literal["open", "token"] = Field(
        "open", validation_alias=_env("PERFFARM_LOADTEST_COMPAT_AUTH")
    )
    token: str | None = Field(None, validation_alias=_env("PERFFARM_LOADTEST_TOKEN"), repr=False)
    influx_url: str | None = Field(None, validation_alias=_env("PERFFARM_LOADTEST_INFLUX"))
    influx_db: str = Field("comms", validation_alias=_env("PERFFARM_LOADTEST_INFLUX_DB"))
    #: The relay plug-in (``perffarm.relays``) the live datapoints go to.
    relay: str = Field("influxdb", min_length=1, validation_alias=_env("PERFFARM_LOADTEST_RELAY"))
    #: Seconds after which a peer that sent nothing counts as missing.
    missing_after: float = Field(
        DEFAULT_MISSING_AFTER_MS / 1000,
        ge=0,
        validation_alias=_env("PERFFARM_LOADTEST_MISSING_AFTER"),
    )
    #: Seconds between checks of running tests' ``abortOnFail`` thresholds.
    check_every: float = Field(
        DEFAULT_CHECK_EVERY, gt=0, validation_alias=_env("PERFFARM_LOADTEST_CHECK_EVERY")
    )

    @property
    def missing_after_ms(self) -> int:
        return int(self.missing_after * 1000)

    @field_validator("results_location", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None
