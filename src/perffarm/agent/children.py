"""The processes and folders of a run die with it, or the next run ends and removes them.

A ``kill -9`` of perffarm (or a crash, or the OOM killer) gives it no chance to stop what it
started: a measured command would run on beside the next benchmark and disturb its timings,
and the run's temporary folder would stay. Two defences:

- **At once**: every process that runs a command for a run (the command measurement's
  launcher, a build step's guardian, a pgbench client) is the leader of its own process
  group and gets a parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG)``, set between fork
  and exec by ``die_with_parent``). The launcher and the guardian (``_spawner.py``) answer
  it by killing their whole group, so a shell's children die too, not only the shell.
- **At the next run**: while they exist, the process groups (with their leader's start time,
  so a reused pid is never taken for ours) and the temporary folders are recorded in the
  machine lock's file (perffarm.agent.lock). A holder that exits normally empties the file;
  the next one to take the lock ends the groups and removes the folders a dead one left.

The record is per process: spawn sites call ``tracked_group``/``track_folder``, and the
lock, while held, writes every change to its file (``set_listener``). Without a lock (a
measurement run from a test, ``perffarm ingest``) nothing is written.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The prefix of a run's temporary folder (perffarm.agent.runner): only folders named so are
# ever removed as a dead run's, whatever a lock file says.
RUN_FOLDER_PREFIX = "perffarm-run-"
# The helper that starts and times commands, and guards a build step (see its docstring).
SPAWNER = Path(__file__).with_name("measurements") / "_spawner.py"
# How long the next run lets a dead run's commands end after SIGTERM before SIGKILL, and
# then waits for them to be gone before refusing to measure beside them.
END_GRACE_SECONDS = 5.0
GONE_TIMEOUT_SECONDS = 30.0

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    # Resolved here, in the parent: the child between fork and exec only calls it.
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child ``sig`` when this process dies (None off Linux).

    The kernel sends it when the *thread* that started the child ends, so start children
    from the thread that outlives them (the runner's). Should this process already be gone
    when the child gets there, the child exits at once instead of running unguarded.
    """
    if _prctl is None:
        return None
    parent = os.getpid()
    prctl = _prctl

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return set_parent_death_signal


def guarded(argv: list[str]) -> list[str]:
    """``argv`` run by a guardian (``_spawner.py --guard``): it starts the command in its own
    process group and kills the group when perffarm dies; its exit status is the command's.

    Start it with ``start_new_session=True`` and ``preexec_fn=die_with_parent()``.
    """
    return [sys.executable, "-I", "-S", str(SPAWNER), "--guard", str(os.getpid()), "--", *argv]


# -- the record of what a dead run would leave ----------------------------------------------


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc``), None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode("ascii", "replace")
    except OSError:
        return None
    # The name (field 2) may hold spaces and parentheses: count from the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


_lock = threading.Lock()
_groups: dict[int, int | None] = {}
_folders: set[str] = set()
_listener: Callable[[dict[str, Any]], None] | None = None


def state() -> dict[str, Any]:
    """What this process would leave behind now: ``groups`` ([pgid, start]) and ``folders``."""
    with _lock:
        return _state()


def _state() -> dict[str, Any]:
    return {
        "groups": [[pgid, start] for pgid, start in sorted(_groups.items())],
        "folders": sorted(_folders),
    }


def set_listener(listener: Callable[[dict[str, Any]], None] | None) -> None:
    """Call ``listener`` with the state on every change (and now); None stops it."""
    global _listener
    with _lock:
        _listener = listener
        if listener is not None:
            listener(_state())


def _changed() -> None:
    if _listener is not None:
        with contextlib.suppress(OSError):  # the record helps the next run; never fail this one
            _listener(_state())


@contextlib.contextmanager
def tracked_group(pgid: int) -> Iterator[None]:
    """While the block runs, process group ``pgid`` (led by ``pgid``) is on the record."""
    start = process_start(pgid)
    with _lock:
        _groups[pgid] = start
        _changed()
    try:
        yield
    finally:
        with _lock:
            _groups.pop(pgid, None)
            _changed()


def track_folder(path: Path) -> None:
    """Put ``path`` (a run's temporary folder) on the record until ``untrack_folder``."""
    with _lock:
        _folders.add(str(path))
        _changed()


def untrack_folder(path: Path) -> None:
    with _lock:
        _folders.discard(str(path))
        _changed()


# -- ending what a dead run left --------------------------------------------------------------


@dataclass
class Leftovers:
    """What the next run found of a dead one, and what it did."""

    ended: list[int] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stuck: list[int] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        if self.ended:
            parts.append(
                f"ended {len(self.ended)} process group{'s' if len(self.ended) != 1 else ''} "
                f"({', '.join(map(str, self.ended))})"
            )
        if self.removed:
            parts.append(
                f"removed {len(self.removed)} temporary folder"
                f"{'s' if len(self.removed) != 1 else ''}"
            )
        return " and ".join(parts)


def _group_exists(pgid: int) -> bool:
    """Whether a live process (not a zombie waiting for its parent) is in group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not os.path.isdir("/proc"):
        return True
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as stat:
                text = stat.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _still_ours(pgid: int, start: int | None) -> bool:
    """Whether group ``pgid`` is the one recorded: its leader is the same process, or the
    leader is gone while members remain (the kernel does not give a pid that still names a
    group to a new process, so those members are the recorded group's)."""
    if not _group_exists(pgid):
        return False
    now = process_start(pgid)
    if now is None:
        return os.path.isdir("/proc")  # leader gone, members left; without /proc: unknown
    return start is not None and now == start


def end_leftovers(record: dict[str, Any]) -> Leftovers:
    """End the process groups and remove the folders a dead run recorded (see the module
    docstring); groups that do not end in time are returned in ``stuck``."""
    found = Leftovers()
    groups: list[int] = []
    for item in record.get("groups") or []:
        try:
            pgid, start = int(item[0]), (None if item[1] is None else int(item[1]))
        except (TypeError, ValueError, IndexError):
            continue
        if pgid > 1 and pgid != os.getpgrp() and _still_ours(pgid, start):
            groups.append(pgid)
    for sig, wait in ((signal.SIGTERM, END_GRACE_SECONDS), (signal.SIGKILL, GONE_TIMEOUT_SECONDS)):
        alive = [pgid for pgid in groups if _group_exists(pgid)]
        for pgid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
                if sig == signal.SIGTERM:
                    os.killpg(pgid, signal.SIGCONT)  # a stopped process acts on it too
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [pgid for pgid in alive if _group_exists(pgid)]
    found.ended = [pgid for pgid in groups if not _group_exists(pgid)]
    found.stuck = [pgid for pgid in groups if _group_exists(pgid)]
    for folder in record.get("folders") or []:
        path = Path(str(folder))
        if path.name.startswith(RUN_FOLDER_PREFIX) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            found.removed.append(str(path))
    return found
