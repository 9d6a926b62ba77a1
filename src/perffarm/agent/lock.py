"""One perffarm agent per machine: an exclusive ``flock`` on a file beside the store.

The kernel drops a ``flock`` when its holder's last file descriptor closes, which includes
the holder dying by ``kill -9`` or a power cut: a stale lock cannot exist, so there is no
"is that pid still alive?" guessing. The file's content (pid, host, start time) only serves
the error message of the agent that finds the lock taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from perffarm.console import UserError

LOCK_FILE_NAME = "agent.lock"


class LockHeld(Exception):
    """Another agent holds the lock; the message names it."""


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    host: str | None
    started_at: datetime | None

    def describe(self) -> str:
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.host and self.host != socket.gethostname():
            parts.append(f"on {self.host}")
        if self.started_at is not None:
            local = self.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
            parts.append(f"since {local}")
        return ", ".join(parts)


class AgentLock:
    """``with AgentLock(path):`` holds the machine's agent lock, or raises LockHeld at once."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # os.open makes a non-inheritable descriptor: a command started by the agent that
        # outlives it must not keep the lock alive.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(fd)
            os.close(fd)
            who = holder.describe()
            raise LockHeld(
                f"another perffarm agent{f' ({who})' if who else ''} is running: it holds "
                f"{self.path}; stop it first, or wait until it is done"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The file is never deleted (deleting a flock'ed file lets two agents lock two
        # different files), so it is rewritten in place.
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode() + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> AgentLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_holder(fd: int) -> LockHolder:
    """What the lock file says about its holder; unknown parts are None (it may be mid-write)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid = data.get("pid")
    started = data.get("started_at")
    try:
        started_at = datetime.fromisoformat(started) if isinstance(started, str) else None
    except ValueError:
        started_at = None
    return LockHolder(
        pid=pid if isinstance(pid, int) else None,
        host=data.get("host") if isinstance(data.get("host"), str) else None,
        started_at=started_at,
    )


@contextlib.contextmanager
def holding_machine_lock(store_path: Path) -> Iterator[AgentLock]:
    """Hold the machine's benchmark lock (beside the store) for the block, or refuse.

    Two perffarm processes measuring at once on one machine disturb each other's timings,
    so `perffarm run` and `perffarm agent` both take it; the refusal names the holder.
    """
    lock = AgentLock(store_path.parent / LOCK_FILE_NAME)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot take the agent lock {lock.path}: {exc.strerror}") from None
    try:
        yield lock
    finally:
        lock.release()
