"""Commands and files on other hosts over SSH (asyncssh), one reused connection per host.

Measurements are synchronous, asyncssh is asyncio: ``SSHPool`` runs one event loop in a
daemon thread for its whole life, so a connection opened for the first repetition is still
usable for the next (a connection belongs to the loop that opened it; ``asyncio.run`` per
call would close it). Callers block on the loop's futures; Ctrl-C in the calling thread
cancels the remote call in flight.

Connections are keyed by (host, port, user) and closed by ``close()``. Passwords and key
passphrases are used to log in and kept nowhere else; error messages never quote them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
# Collected files travel inside the run document (base64): refuse what would bloat it.
DEFAULT_MAX_FETCH_BYTES = 32 * 1024 * 1024


class RemoteError(RuntimeError):
    """An SSH connection, command or file transfer failed; the message is one line."""


@dataclass(frozen=True)
class SSHTarget:
    """Where and how to log in. ``known_hosts=None`` accepts any host key (unsafe)."""

    host: str
    port: int = 22
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    client_keys: tuple[str, ...] | None = None
    passphrase: str | None = field(default=None, repr=False)
    known_hosts: str | None = DEFAULT_KNOWN_HOSTS
    connect_timeout: float = 30.0

    @property
    def key(self) -> tuple[str, int, str | None]:
        return (self.host, self.port, self.user)

    def display(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}"


@dataclass
class RemoteResult:
    """One remote command: exit status (None when killed by a signal), output, wall time."""

    exit_status: int | None
    stdout: bytes
    stderr: bytes
    seconds: float
    exit_signal: str | None = None


def asyncssh_available() -> bool:
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        return False
    return True


class SSHPool:
    """A small pool: one SSH connection per (host, port, user), reused until ``close()``."""

    def __init__(self) -> None:
        import asyncssh  # fail here, with ImportError, before any thread starts

        self._asyncssh = asyncssh
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="perffarm-ssh", daemon=True
        )
        self._thread.start()
        self._connections: dict[tuple[str, int, str | None], Any] = {}
        self._connecting: dict[tuple[str, int, str | None], asyncio.Lock] = {}
        self.connections_opened = 0
        self._closed = False

    # -- the synchronous API ---------------------------------------------------------------

    def connect(self, target: SSHTarget) -> dict[str, Any]:
        """Open (or reuse) the connection; what the server said about itself."""
        conn = self._call(lambda: self._connection(target))
        return {
            "server_version": conn.get_extra_info("server_version"),
            "host": target.host,
            "port": target.port,
            "user": target.user or conn.get_extra_info("username"),
        }

    def run(self, target: SSHTarget, command: str, *, timeout: float | None = None) -> RemoteResult:
        """Run ``command`` with the remote user's shell; a non-zero exit is not an error."""
        return self._call(lambda: self._run(target, command, timeout))

    def fetch(
        self, target: SSHTarget, remote_path: str, *, max_bytes: int = DEFAULT_MAX_FETCH_BYTES
    ) -> bytes:
        """The content of a remote file, over SFTP."""
        return self._call(lambda: self._fetch(target, remote_path, max_bytes))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(timeout=10)
        except Exception:
            pass  # closing is best effort: the loop and its sockets go away below anyway
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> SSHPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        if self._closed:
            raise RemoteError("the SSH connection pool is closed")
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            make(),  # type: ignore[arg-type]  # an Awaitable made by a coroutine function
            self._loop,
        )
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    # -- on the loop -------------------------------------------------------------------------

    async def _connection(self, target: SSHTarget) -> Any:
        lock = self._connecting.setdefault(target.key, asyncio.Lock())
        async with lock:
            conn = self._connections.get(target.key)
            if conn is not None and not conn.is_closed():
                return conn
            conn = await self._open(target)
            self._connections[target.key] = conn
            self.connections_opened += 1
            return conn

    async def _open(self, target: SSHTarget) -> Any:
        asyncssh = self._asyncssh
        options: dict[str, Any] = {
            "port": target.port,
            "known_hosts": _expand(target.known_hosts),
            "connect_timeout": target.connect_timeout,
            # A host that vanishes without closing the TCP connection (a VM powered off)
            # would otherwise leave a command or a file transfer waiting forever.
            "keepalive_interval": 15,
            "keepalive_count_max": 4,
        }
        if target.user:
            options["username"] = target.user
        if target.password is not None:
            options["password"] = target.password
        if target.client_keys is not None:
            options["client_keys"] = [_expand(path) for path in target.client_keys]
            if target.passphrase is not None:
                options["passphrase"] = target.passphrase
        elif target.password is not None:
            # With a password and no keys, only the password is tried: keys from ~/.ssh or
            # an ssh-agent would log in as someone else's identity, or count as failures.
            options["client_keys"] = None
            options["agent_path"] = None
        where = target.display()
        try:
            return await asyncssh.connect(target.host, **options)
        except asyncssh.PermissionDenied:
            raise RemoteError(
                f"cannot log in to {where}: the server refused the credentials "
                "(check user, password or client_keys)"
            ) from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise RemoteError(
                f"the host key of {where} is not trusted ({exc.reason}): add it to "
                f"{target.known_hosts} (ssh-keyscan -p {target.port} {target.host} >> "
                f"{target.known_hosts}), or set known_hosts: null to accept any key (unsafe)"
            ) from None
        except asyncssh.KeyImportError as exc:
            raise RemoteError(f"cannot use the client key for {where}: {exc}") from None
        except asyncssh.DisconnectError as exc:
            raise RemoteError(f"SSH to {where} failed: {exc.reason}") from None
        except TimeoutError:
            raise RemoteError(
                f"cannot connect to {where}: no answer within {target.connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise RemoteError(f"cannot connect to {where}: {exc.strerror or exc}") from None

    async def _run(self, target: SSHTarget, command: str, timeout: float | None) -> RemoteResult:
        asyncssh = self._asyncssh
        conn = await self._connection(target)
        started = time.perf_counter()
        try:
            done = await conn.run(command, check=False, timeout=timeout, encoding=None)
        except asyncssh.TimeoutError:
            raise RemoteError(
                f"the command on {target.display()} did not finish within {timeout:g} s"
            ) from None
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError) as exc:
            self._connections.pop(target.key, None)
            raise RemoteError(f"lost the connection to {target.display()}: {exc.reason}") from None
        except asyncssh.ChannelOpenError as exc:
            raise RemoteError(
                f"{target.display()} refused to run a command: {exc.reason}"
            ) from None
        seconds = time.perf_counter() - started
        return RemoteResult(
            exit_status=done.exit_status if done.exit_signal is None else None,
            stdout=_as_bytes(done.stdout),
            stderr=_as_bytes(done.stderr),
            seconds=seconds,
            exit_signal=done.exit_signal[0] if done.exit_signal else None,
        )

    async def _fetch(self, target: SSHTarget, remote_path: str, max_bytes: int) -> bytes:
        asyncssh = self._asyncssh
        conn = await self._connection(target)
        where = f"{target.display()}:{remote_path}"
        try:
            async with conn.start_sftp_client() as sftp:
                attributes = await sftp.stat(remote_path)
                if attributes.size is not None and attributes.size > max_bytes:
                    raise RemoteError(
                        f"{where} is {attributes.size} bytes, more than the "
                        f"{max_bytes} bytes a collected file may have"
                    )
                async with sftp.open(remote_path, "rb") as handle:
                    data = await handle.read(max_bytes + 1)
        except asyncssh.SFTPNoSuchFile:
            raise RemoteError(f"{where}: no such file on the remote host") from None
        except asyncssh.SFTPError as exc:
            raise RemoteError(f"cannot fetch {where}: {exc.reason}") from None
        except asyncssh.ChannelOpenError as exc:
            raise RemoteError(f"{target.display()} refused SFTP: {exc.reason}") from None
        if len(data) > max_bytes:
            raise RemoteError(f"{where} is larger than {max_bytes} bytes")
        return bytes(data)

    async def _close_all(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()
        for conn in connections:
            try:
                await asyncio.wait_for(conn.wait_closed(), timeout=5)
            except Exception:
                pass


def _expand(path: str | None) -> str | None:
    return str(Path(path).expanduser()) if path is not None else None


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")
