"""A private, throw-away PostgreSQL cluster for benchmarks.

The cluster lives in a fresh temporary directory (data, unix socket, server log), listens
only on its own unix socket on a free port, and is always stopped and deleted: on ``stop()``,
on leaving the ``with`` block (exceptions and KeyboardInterrupt included), at interpreter
exit, and on SIGTERM. It never connects to, or stops, any other server on the machine.

PostgreSQL refuses to run as root, so when perffarm runs as root the server processes (and
``initdb``/``pg_ctl``) run as an unprivileged user (``postgres`` if it exists, else
``nobody``) through ``setpriv``; clients such as pgbench may still run as root because
they connect through the socket with ``trust`` authentication.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perffarm.agent.pgcluster.processes import (
    alive,
    kill_tree,
    owner_alive,
    read_owner,
    track,
    untrack,
    write_owner,
)
from perffarm.agent.pgcluster.programs import (
    ClusterError,
    ConnectionInfo,
    find_bin_dir,
    free_port,
    quote_setting,
)

# Settings the cluster sets itself for isolation; they differ on every start, so they are
# left out of ``non_default_settings`` (which feeds the run's environment).
ISOLATION_SETTINGS = frozenset({"port", "unix_socket_directories", "listen_addresses"})

_FIELD_SEP = "\x1f"
BASE_PREFIX = "perffarm-pg-"


class PrivateCluster:
    """A PostgreSQL cluster of one's own; use as a context manager.

    >>> with PrivateCluster(settings={"shared_buffers": "128MB"}) as pg:
    ...     pg.psql("select 1")
    """

    def __init__(
        self,
        bin_dir: Path | str | None = None,
        settings: Mapping[str, Any] | None = None,
        *,
        base_dir: Path | str | None = None,
        dbname: str = "postgres",
        run_as: str | None = None,
        start_timeout: float = 120.0,
        initdb_options: Sequence[str] = (),
    ) -> None:
        self.bin_dir = find_bin_dir(bin_dir)
        self.settings = {str(k): v for k, v in (settings or {}).items()}
        self.dbname = dbname
        self.start_timeout = start_timeout
        self.initdb_options = list(initdb_options)
        self._base_parent = Path(base_dir) if base_dir is not None else None
        self._run_as = run_as
        self.base: Path | None = None
        self.port: int | None = None
        self.postmaster_pid: int | None = None
        self.final_log = ""
        self._started = False
        self._stop_lock = threading.Lock()
        self._user: pwd.struct_passwd | None = None

    # -- paths ----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._require_base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._require_base() / "socket"

    @property
    def log_file(self) -> Path:
        return self._require_base() / "server.log"

    def _require_base(self) -> Path:
        if self.base is None:
            raise ClusterError("the cluster has not been created yet (call start())")
        return self.base

    @property
    def superuser(self) -> str:
        return self._user.pw_name if self._user is not None else getpass.getuser()

    def connection(self, dbname: str | None = None) -> ConnectionInfo:
        if self.port is None:
            raise ClusterError("the cluster is not running")
        return ConnectionInfo(
            str(self.socket_dir), self.port, self.superuser, dbname or self.dbname
        )

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> PrivateCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> PrivateCluster:
        """initdb into a fresh temporary directory and start the server; idempotent."""
        if self._started:
            return self
        track(self)
        try:
            self._create()
            self._start_server()
            self._started = True
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self) -> None:
        self._user = self._unprivileged_user()
        parent = self._base_parent or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        reap_stale_clusters(parent)
        self.base = Path(tempfile.mkdtemp(prefix=BASE_PREFIX, dir=parent))
        write_owner(self.base, self.bin_dir)
        self.socket_dir.mkdir()
        if self._user is not None:
            # The server user must reach its files; the base stays unreadable to others.
            for path in (self.base, self.socket_dir):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
            self._check_traversable(self.base)
        self.port = free_port()
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # a throw-away cluster: no need to wait for the disk
                *self.initdb_options,
            ],
            what="initdb",
        )
        lines = [
            "",
            "# perffarm: a private cluster, reachable only through its own socket",
            f"port = {self.port}",
            f"unix_socket_directories = {quote_setting(self.socket_dir)}",
            "listen_addresses = ''",
        ]
        if self.settings:
            lines.append("# perffarm: settings from the suite")
            for name, value in self.settings.items():
                if name in ISOLATION_SETTINGS:
                    raise ClusterError(
                        f"the setting {name!r} is chosen by perffarm to isolate the cluster; "
                        "remove it from the suite's settings"
                    )
                lines.append(f"{name} = {quote_setting(value)}")
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n".join(lines) + "\n")

    def _start_server(self) -> None:
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(self.start_timeout)),
                "start",
            ],
            what="pg_ctl start",
            timeout=self.start_timeout + 30,
        )
        self.postmaster_pid = self._read_postmaster_pid()

    def stop(self) -> None:
        """Stop the server (fast, then immediate, then kill) and delete every file; idempotent."""
        with self._stop_lock:
            try:
                if self.base is not None and self.base.exists():
                    self._stop_server()
                    try:
                        self.final_log = self.log_file.read_text(errors="replace")
                    except OSError:
                        pass
                    shutil.rmtree(self.base, ignore_errors=True)
            finally:
                self._started = False
                untrack(self)

    def _stop_server(self) -> None:
        pid = self._read_postmaster_pid() or self.postmaster_pid
        if pid is None and not (self.data_dir / "postmaster.pid").exists():
            return
        for mode, timeout in (("fast", 60), ("immediate", 30)):
            try:
                self._run(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-m",
                        mode,
                        "-w",
                        "-t",
                        str(timeout),
                        "stop",
                    ],
                    what=f"pg_ctl stop -m {mode}",
                    timeout=timeout + 10,
                )
            except ClusterError:
                continue
            if pid is None or not alive(pid):
                return
        if pid is not None:
            kill_tree(pid)

    def _read_postmaster_pid(self) -> int | None:
        # The first line of postmaster.pid is the postmaster's pid: PostgreSQL's documented
        # lock-file layout, the same thing pg_ctl reads.
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            return int(first.strip())
        except (OSError, IndexError, ValueError, ClusterError):
            return None

    # -- queries --------------------------------------------------------------------------

    def psql(self, sql: str, *, dbname: str | None = None) -> list[list[str]]:
        """Run SQL through psql; rows of text fields (no header)."""
        conn = self.connection(dbname)
        proc = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-F",
                _FIELD_SEP,
                "-v",
                "ON_ERROR_STOP=1",
                *conn.pg_args(),
                "-d",
                conn.dbname,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.client_env(),
        )
        if proc.returncode != 0:
            raise ClusterError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
        return [line.split(_FIELD_SEP) for line in proc.stdout.splitlines() if line]

    def create_database(self, name: str) -> None:
        escaped = name.replace('"', '""')
        self.psql(f'CREATE DATABASE "{escaped}"')

    def version(self) -> str:
        return self.psql("SELECT version()")[0][0]

    def server_version_num(self) -> int:
        return int(self.psql("SHOW server_version_num")[0][0])

    def non_default_settings(self) -> dict[str, str]:
        """Settings of the server not at their built-in default (the suite's, initdb's), with
        units; what this query's own session set (application_name...) is left out."""
        rows = self.psql(
            "SELECT name, current_setting(name) FROM pg_settings "
            "WHERE source NOT IN ('default', 'override', 'client', 'session') ORDER BY name"
        )
        return {name: value for name, value in rows if name not in ISOLATION_SETTINGS}

    def client_env(self) -> dict[str, str]:
        """Environment for client programs: the cluster's, never a PGxxx of the caller's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(self.connection().env())
        return env

    def processes(self) -> list[int]:
        """Pids of the postmaster and its children (empty when stopped)."""
        pid = self.postmaster_pid
        if pid is None or not alive(pid):
            return []
        try:
            import psutil

            parent = psutil.Process(pid)
            return [pid, *(child.pid for child in parent.children(recursive=True))]
        except Exception:
            return [pid]

    # -- running the server programs ------------------------------------------------------

    def _unprivileged_user(self) -> pwd.struct_passwd | None:
        if self._run_as is None and os.geteuid() != 0:
            return None
        names = [self._run_as] if self._run_as else ["postgres", "nobody"]
        for name in names:
            try:
                user = pwd.getpwnam(name)
            except KeyError:
                continue
            if user.pw_uid != 0:
                return user
        raise ClusterError(
            "PostgreSQL refuses to run as root and no unprivileged user was found "
            f"(tried {', '.join(names)}): create a 'postgres' user or run perffarm as a normal user"
        )

    def _check_traversable(self, path: Path) -> None:
        assert self._user is not None
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001 and parent.stat().st_uid != self._user.pw_uid:
                raise ClusterError(
                    f"{parent} is not reachable by the user {self._user.pw_name!r} that runs "
                    "the server: choose a base_dir under a world-traversable directory "
                    "(e.g. /tmp)"
                )

    def _wrap(self, argv: list[str]) -> list[str]:
        if self._user is None:
            return argv
        setpriv = shutil.which("setpriv")
        if setpriv:
            return [
                setpriv,
                f"--reuid={self._user.pw_uid}",
                f"--regid={self._user.pw_gid}",
                "--clear-groups",
                "--",
                *argv,
            ]
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", self._user.pw_name, "--", *argv]
        raise ClusterError("running as root needs setpriv or runuser to drop privileges")

    def _run(self, argv: list[str], *, what: str, timeout: float = 300) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._user is not None:
            env["HOME"] = self._user.pw_dir
            env["USER"] = env["LOGNAME"] = self._user.pw_name
        try:
            proc = subprocess.run(
                self._wrap(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=str(self.base) if self.base else None,
                # A Ctrl-C at the terminal must not kill pg_ctl half-way: stop() runs it
                # deliberately afterwards.
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"{what} did not finish within {timeout:.0f} s") from exc
        except OSError as exc:
            raise ClusterError(f"{what} could not run: {exc}") from exc
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            log = ""
            with contextlib.suppress(OSError, ClusterError):
                log = self.log_file.read_text(errors="replace").strip()[-2000:]
            raise ClusterError(
                f"{what} failed with exit status {proc.returncode}: {output[-2000:]}"
                + (f"\nserver log:\n{log}" if log else "")
            )
        return proc.stdout


def reap_stale_clusters(parent: Path | str | None = None) -> list[Path]:
    """Stop and delete private clusters whose perffarm process died without cleaning up
    (SIGKILL, power loss); a cluster of a live process is left alone. Returns what was
    removed. Runs before every new cluster, so an unattended agent never piles them up."""
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    for base in parent.glob(f"{BASE_PREFIX}*"):
        owner = read_owner(base)
        if owner is None:
            continue  # not ours, or still being created
        pid, started, bin_dir = owner
        if owner_alive(pid, started):
            continue
        recorded = Path(str(bin_dir or "/nonexistent"))
        try:
            stale = PrivateCluster(recorded if (recorded / "pg_ctl").exists() else None)
        except ClusterError:
            # No pg_ctl to ask for a clean stop: kill what the lock file names.
            with contextlib.suppress(OSError, ValueError, IndexError):
                kill_tree(int((base / "data" / "postmaster.pid").read_text().split()[0]))
            shutil.rmtree(base, ignore_errors=True)
            removed.append(base)
            continue
        stale.base = base
        stale._user = stale._unprivileged_user()
        with contextlib.suppress(Exception):
            stale.stop()
        shutil.rmtree(base, ignore_errors=True)
        removed.append(base)
    return removed
