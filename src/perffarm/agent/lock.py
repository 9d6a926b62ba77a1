"""One perffarm agent per machine: an exclusive ``flock`` on a file beside the store.

The kernel drops a ``flock`` when its holder's last file descriptor closes, which includes
the holder dying by ``kill -9`` or a power cut: a stale lock cannot exist, so there is no
"is that pid still alive?" guessing. The file's content (pid, host, start time) serves the
error message of the agent that finds the lock taken, and is the record of what the holder
would leave if it died now (perffarm.agent.children: the process groups of its commands and
its temporary folders). A holder that lets go empties the file; the next holder ends and
removes what a dead one recorded before it measures anything.
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
from typing import Any

from perffarm.agent import children
from perffarm.console import UserError, err_console

LOCK_FILE_NAME = "agent.lock"


class LockHeld(Exception):
    """Another agent holds the lock; the message names it."""


class LeftoversRemain(Exception):
    """Processes of a dead run do not end; measuring beside them would be wrong."""


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
        self._info: dict[str, object] = {}
        #: What a dead holder had left and taking the lock ended (see the module docstring).
        self.leftovers = children.Leftovers()
        self.previous: LockHolder | None = None

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
        try:
            record = read_record(fd)
            self.previous = read_holder(fd) if record else None
            self.leftovers = children.end_leftovers(record)
        except BaseException:
            os.close(fd)
            raise
        if self.leftovers.stuck:
            os.close(fd)
            groups = ", ".join(map(str, self.leftovers.stuck))
            raise LeftoversRemain(
                f"processes of a perffarm run that died (process group {groups}) do not end "
                f"after SIGKILL; a benchmark beside them would be disturbed: wait for them, "
                f"or end them (`kill -9 -- -{self.leftovers.stuck[0]}`), then start again"
            )
        # The file is never deleted (deleting a flock'ed file lets two agents lock two
        # different files), so it is rewritten in place.
        self._info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(),
        }
        self._fd = fd
        children.set_listener(self._write)

    def _write(self, state: dict[str, object]) -> None:
        """The holder and what it would leave (children.state()), in place."""
        if self._fd is None:
            return
        text = json.dumps({**self._info, **state}).encode() + b"\n"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text, 0)

    def release(self) -> None:
        if self._fd is None:
            return
        children.set_listener(None)
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # nothing left behind
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> AgentLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_record(fd: int) -> dict[str, Any]:
    """The lock file's JSON object; empty when the file is empty, partial or not ours."""
    size = os.fstat(fd).st_size
    try:
        data = json.loads(os.pread(fd, max(size, 4096), 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def read_holder(fd: int) -> LockHolder:
    """What the lock file says about its holder; unknown parts are None (it may be mid-write)."""
    data = read_record(fd)
    pid, host, started = data.get("pid"), data.get("host"), data.get("started_at")
    try:
        started_at = datetime.fromisoformat(started) if isinstance(started, str) else None
    except ValueError:
        started_at = None
    return LockHolder(
        pid=pid if isinstance(pid, int) else None,
        host=host if isinstance(host, str) else None,
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
    except (LockHeld, LeftoversRemain) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot take the agent lock {lock.path}: {exc.strerror}") from None
    if lock.leftovers.ended or lock.leftovers.removed:
        who = lock.previous.describe() if lock.previous else ""
        err_console.print(
            f"note: a perffarm run that died{f' ({who})' if who else ''} left work behind: "
            f"{lock.leftovers.describe()}",
            soft_wrap=True,
        )
    try:
        yield lock
    finally:
        lock.release()
