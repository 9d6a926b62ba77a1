"""Making sure private clusters die with the process that made them, and cleaning up after
one that died without doing so: the clusters alive in this process (stopped at exit and on
SIGTERM), the owner file naming the process of a cluster, and killing a postmaster's tree.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

OWNER_FILE = "perffarm-owner.json"


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_live: set[_Stoppable] = set()
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


def track(cluster: _Stoppable) -> None:
    """Stop ``cluster`` at interpreter exit and on SIGTERM, unless it is untracked first."""
    with _live_lock:
        _live.add(cluster)
    _install_sigterm()


def untrack(cluster: _Stoppable) -> None:
    """``cluster`` is stopped; SIGTERM goes back to its default when none is left."""
    with _live_lock:
        _live.discard(cluster)
        last = not _live
    if last:
        _restore_sigterm()


def _process_start(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


def write_owner(base: Path, bin_dir: Path) -> None:
    owner = {"pid": os.getpid(), "started": _process_start(os.getpid()), "bin_dir": str(bin_dir)}
    (base / OWNER_FILE).write_text(json.dumps(owner))


def read_owner(base: Path) -> tuple[int, float | None, str | None] | None:
    """(pid, start time, bin_dir) of the process that made the cluster in ``base``; None when
    the file is missing or unreadable (not ours, or still being created)."""
    try:
        owner = json.loads((base / OWNER_FILE).read_text())
        return int(owner["pid"]), owner.get("started"), owner.get("bin_dir")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def owner_alive(pid: int, started: float | None) -> bool:
    """Whether the owner still runs (and is not a new process with a reused pid)."""
    now = _process_start(pid)
    return now is not None and (started is None or abs(now - float(started)) < 1.0)


def alive(pid: int) -> bool:
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


def kill_tree(pid: int) -> None:
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
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
