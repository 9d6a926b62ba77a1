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

import atexit
import contextlib
import getpass
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

# Settings the cluster sets itself for isolation; they differ on every start, so they are
# left out of ``non_default_settings`` (which feeds the run's environment).
ISOLATION_SETTINGS = frozenset({"port", "unix_socket_directories", "listen_addresses"})

_FIELD_SEP = "\x1f"
BASE_PREFIX = "perffarm-pg-"
OWNER_FILE = "perffarm-owner.json"


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _quote_setting(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


# -- making sure clusters die with the process --------------------------------------------

_live: set[PrivateCluster] = set()
_live_lock = threading.Lock()
_previous_sigterm: Any = None
_sigterm_installed = False


def _stop_all_live() -> None:
    with _live_lock:
        clusters = list(_live)
    for cluster in clusters:
        with contextlib.suppress(Exception):
            cluster.stop()


atexit.register(_stop_all_live)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _stop_all_live()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    # Exiting through SystemExit lets every finally block and atexit handler run, which a
    # default SIGTERM death would skip.
    raise SystemExit(128 + signum)


def _install_sigterm() -> None:
    global _previous_sigterm, _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    # Only take over the default disposition: a runner with its own handler keeps it and
    # is expected to turn SIGTERM into an exception that reaches our finally blocks.
    if current not in (signal.SIG_DFL, None):
        return
    _previous_sigterm = None
    signal.signal(signal.SIGTERM, _on_sigterm)
    _sigterm_installed = True


def _restore_sigterm() -> None:
    global _sigterm_installed
    if not _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _sigterm_installed = False


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
        with _live_lock:
            _live.add(self)
        _install_sigterm()
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
        _write_owner(self.base, self.bin_dir)
        self.socket_dir.mkdir()
        if self._user is not None:
            # The server user must reach its files; the base stays unreadable to others.
            for path in (self.base, self.socket_dir):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
            self._check_traversable(self.base)
        self.port = _free_port()
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
            f"unix_socket_directories = {_quote_setting(self.socket_dir)}",
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
                lines.append(f"{name} = {_quote_setting(value)}")
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
                with _live_lock:
                    _live.discard(self)
                    last = not _live
                if last:
                    _restore_sigterm()

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
            if pid is None or not _alive(pid):
                return
        if pid is not None:
            _kill_tree(pid)

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
        if pid is None or not _alive(pid):
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


def _process_start(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


def _write_owner(base: Path, bin_dir: Path) -> None:
    owner = {"pid": os.getpid(), "started": _process_start(os.getpid()), "bin_dir": str(bin_dir)}
    (base / OWNER_FILE).write_text(json.dumps(owner))


def reap_stale_clusters(parent: Path | str | None = None) -> list[Path]:
    """Stop and delete private clusters whose perffarm process died without cleaning up
    (SIGKILL, power loss); a cluster of a live process is left alone. Returns what was
    removed. Runs before every new cluster, so an unattended agent never piles them up."""
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    for base in parent.glob(f"{BASE_PREFIX}*"):
        try:
            owner = json.loads((base / OWNER_FILE).read_text())
            pid, started = int(owner["pid"]), owner.get("started")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours, or still being created
        now = _process_start(pid)
        if now is not None and (started is None or abs(now - float(started)) < 1.0):
            continue  # the owner is alive (and is not a new process with a reused pid)
        recorded = Path(str(owner.get("bin_dir") or "/nonexistent"))
        try:
            stale = PrivateCluster(recorded if (recorded / "pg_ctl").exists() else None)
        except ClusterError:
            # No pg_ctl to ask for a clean stop: kill what the lock file names.
            with contextlib.suppress(OSError, ValueError, IndexError):
                _kill_tree(int((base / "data" / "postmaster.pid").read_text().split()[0]))
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


def _alive(pid: int) -> bool:
    try:
        import psutil

        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except Exception:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _kill_tree(pid: int) -> None:
    """Last resort: SIGKILL the postmaster and every child it has."""
    pids = [pid]
    try:
        import psutil

        pids += [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except Exception:
        pass
    for victim in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
