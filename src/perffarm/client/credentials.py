"""The credentials files: which server, and which machine secret or user tokens for it.

Both live in the credentials directory: ``--creds-dir``, else ``PERFFARM_CONFIG_DIR``, else
the user's config directory (``platformdirs``: ``$XDG_CONFIG_HOME/perffarm``, usually
``~/.config/perffarm``). Both have one format::

    {"default": "http://farm:8080",
     "servers": {"http://farm:8080": {"server": "http://farm:8080", ...}}}

- ``credentials.json``: a machine's ``{"server", "machine", "secret", "saved_at"}``, written
  by ``perffarm machine register``, read by upload, the agent and ``machine`` commands;
- ``user-credentials.json``: a signed-in user's ``{"server", "access_token",
  "refresh_token", "expires_at", "scope"}``, written by ``perffarm login``.

A machine and a person are different principals, hence two files. Each is keyed by the
server's normalized URL; the last server saved is the default. A file is written whole
(a temporary file, then a rename: a crash leaves the old file or the new one), created
readable by the user only (0600, in a 0700 directory) before the secret is written.
Keys this version does not know are kept as they are.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perffarm.client._core import normalize_server
from perffarm.client.errors import CredentialsError, NoCredentials

CONFIG_DIR_ENV = "PERFFARM_CONFIG_DIR"
MACHINE_FILE = "credentials.json"
USER_FILE = "user-credentials.json"


def config_dir(override: str | Path | None = None) -> Path:
    """The credentials directory: ``override``, ``PERFFARM_CONFIG_DIR``, or the user's."""
    if override:
        return Path(override).expanduser()
    configured = os.environ.get(CONFIG_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("perffarm"))


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON readable by the user only, whole or not at all.

    The file is created 0600 before anything is written and renamed over the old one, so a
    secret is never readable by others, not even briefly, and a crash leaves the old file
    or the new one, never half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class CredentialsFile:
    """One credentials file: an entry (a dict) per server, and the default server.

    ``repair`` ends the message of a file that cannot be read (what to do about it).
    """

    def __init__(self, path: Path, repair: str) -> None:
        self.path = path
        self.repair = repair

    def read(self) -> dict[str, Any]:
        """The whole file (``{"default": None, "servers": {}}`` when there is none)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"default": None, "servers": {}}
        except OSError as exc:
            raise CredentialsError(
                f"cannot read {self.path}: {exc.strerror} ({self.repair})"
            ) from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
                raise ValueError("no 'servers' object")
        except (ValueError, RecursionError) as exc:
            raise CredentialsError(
                f"cannot read the credentials file {self.path}: {exc} ({self.repair})"
            ) from None
        return data

    def entry(self, server: str | None) -> tuple[str | None, dict[str, Any] | None]:
        """The server's key and entry (the default server's when None); None when absent."""
        data = self.read()
        default = data.get("default")
        key = (
            normalize_server(server) if server else (default if isinstance(default, str) else None)
        )
        entry = data["servers"].get(key) if key else None
        return key, entry if isinstance(entry, dict) else None

    def put(self, server: str, entry: dict[str, Any]) -> Path:
        """Add or replace the server's entry and make it the default."""
        data = self.read()
        key = normalize_server(server)
        data["servers"][key] = entry
        data["default"] = key
        try:
            write_private_json(self.path, data)
        except OSError as exc:
            raise CredentialsError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return self.path

    def delete(self, server: str) -> bool:
        """Remove the server's entry; the default becomes another server, or none."""
        data = self.read()
        key = normalize_server(server)
        removed = data["servers"].pop(key, None) is not None
        if data.get("default") == key:
            data["default"] = next(iter(data["servers"]), None)
        if removed:
            try:
                write_private_json(self.path, data)
            except OSError as exc:
                raise CredentialsError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return removed


def machine_file(directory: str | Path | None = None) -> CredentialsFile:
    return CredentialsFile(
        config_dir(directory) / MACHINE_FILE,
        "fix or delete it, then run `perffarm machine register`",
    )


def user_file(directory: str | Path | None = None) -> CredentialsFile:
    return CredentialsFile(
        config_dir(directory) / USER_FILE, "delete it and run `perffarm login` again"
    )


# -- a machine's secret ----------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A registered machine: the server, its name there and its secret."""

    server: str
    machine: str
    secret: str

    @property
    def token(self) -> str:
        """What goes after ``Authorization: Bearer``."""
        return f"{self.machine}:{self.secret}"


def load_credentials(directory: str | Path | None = None, server: str | None = None) -> Credentials:
    """The machine credentials for ``server``, or for the default server when None."""
    file = machine_file(directory)
    key, entry = file.entry(server)
    if entry is None:
        where = f" for {key}" if key else ""
        raise NoCredentials(
            f"no machine credentials{where} in {file.path}: run "
            f"`perffarm machine register NAME --server {key or 'URL'}` first"
        )
    machine, secret = entry.get("machine"), entry.get("secret")
    if not isinstance(machine, str) or not isinstance(secret, str):
        raise CredentialsError(
            f"the credentials of {key} in {file.path} lack the machine or its secret "
            f"({file.repair})"
        )
    return Credentials(server=str(key), machine=machine, secret=secret)


def save_credentials(directory: str | Path | None, credentials: Credentials) -> Path:
    """Add or replace one server's machine credentials; that server becomes the default."""
    server = normalize_server(credentials.server)
    return machine_file(directory).put(
        server,
        {
            "server": server,
            "machine": credentials.machine,
            "secret": credentials.secret,
            "saved_at": datetime.now(UTC).isoformat(),
        },
    )


def delete_credentials(directory: str | Path | None, server: str) -> bool:
    """Forget this machine's credentials for ``server``; False when there were none."""
    return machine_file(directory).delete(server)


# -- a user's tokens -------------------------------------------------------------------


@dataclass
class UserTokens:
    """A signed-in user's tokens for one server (``perffarm login``)."""

    server: str
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scope: str

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat(),
            "scope": self.scope,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserTokens:
        expires_at = datetime.fromisoformat(data["expires_at"])
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return cls(
            server=str(data["server"]),
            access_token=str(data["access_token"]),
            refresh_token=data.get("refresh_token"),
            expires_at=expires_at,
            scope=str(data.get("scope", "")),
        )


def load_user_tokens(directory: str | Path | None, server: str | None) -> UserTokens | None:
    """The user's tokens for ``server`` (the last one signed in to when None), or None."""
    file = user_file(directory)
    key, entry = file.entry(server)
    if entry is None:
        return None
    try:
        return UserTokens.from_json(entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise CredentialsError(
            f"the sign-in to {key} in {file.path} cannot be read ({type(exc).__name__}: "
            f"{exc}; {file.repair})"
        ) from None


def save_user_tokens(directory: str | Path | None, tokens: UserTokens) -> Path:
    return user_file(directory).put(tokens.server, tokens.to_json())


def delete_user_tokens(directory: str | Path | None, server: str) -> bool:
    return user_file(directory).delete(server)
