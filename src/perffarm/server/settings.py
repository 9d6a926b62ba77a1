"""Server settings: from the command line, or from the environment in worker processes.

``perffarm server --workers N`` starts N uvicorn processes; each builds its app from
``PERFFARM_SERVER_*`` variables that the command sets, so every worker sees the same
settings without pickling anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE = "./farm.db"
DEFAULT_MAX_BODY = 32 * 1024 * 1024
REGISTRATION_MODES = ("open", "admin")

_ENV_DATABASE = "PERFFARM_SERVER_DATABASE"
_ENV_MAX_BODY = "PERFFARM_SERVER_MAX_BODY"
_ENV_REGISTRATION = "PERFFARM_REGISTRATION"
ADMIN_TOKEN_ENV = "PERFFARM_ADMIN_TOKEN"


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
        return env

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database=os.environ.get(_ENV_DATABASE, DEFAULT_DATABASE),
            max_body=int(os.environ.get(_ENV_MAX_BODY, DEFAULT_MAX_BODY)),
            registration=os.environ.get(_ENV_REGISTRATION, "open"),
            admin_token=os.environ.get(ADMIN_TOKEN_ENV) or None,
        )
