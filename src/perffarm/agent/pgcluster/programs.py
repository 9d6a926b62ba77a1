"""What a private cluster is made of: PostgreSQL's programs, how a client reaches it, and
how its settings are written."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ClusterError(RuntimeError):
    """The cluster could not be created, started or queried; the message says why."""


@dataclass(frozen=True)
class ConnectionInfo:
    """How a client reaches the cluster (libpq: host = the socket directory)."""

    host: str
    port: int
    user: str
    dbname: str

    def pg_args(self) -> list[str]:
        """Command-line options understood by psql, pgbench, createdb..."""
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]

    def env(self) -> dict[str, str]:
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
        }


def find_bin_dir(bin_dir: Path | str | None = None) -> Path:
    """The directory with initdb/pg_ctl/postgres: the given one, pg_config's, or the newest
    Debian-style ``/usr/lib/postgresql/*/bin``."""
    if bin_dir is not None:
        path = Path(bin_dir)
        if not (path / "initdb").exists():
            raise ClusterError(f"no initdb in {path}: bin_dir must hold PostgreSQL's programs")
        return path
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        # Debian's /usr/bin/pg_config reports /usr/lib/postgresql/N/bin only when the
        # server package is installed; without it initdb is missing there.
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    candidates = [
        Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()
    ]

    def major(path: Path) -> tuple[int, str]:
        name = path.parent.name
        return (int(name) if name.isdigit() else -1, name)

    if candidates:
        return max(candidates, key=major)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ClusterError(
        "no PostgreSQL server programs found: install them (e.g. apt install postgresql) "
        "or set bin_dir to the directory holding initdb"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quote_setting(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
