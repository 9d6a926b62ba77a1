"""Running a client program (pgbench) so that it can be stopped: its own session, killed
on Ctrl-C, on a stop request or after its time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from perffarm.agent import children


def run_client(
    argv: list[str],
    *,
    env: dict[str, str],
    timeout: float | None,
    stop_event: threading.Event | None = None,
    cwd: Path | None = None,
) -> tuple[int, str, bool]:
    """Run a client program, stdout and stderr interleaved into one text.

    Returns (exit status, output, stopped). The program gets its own session so that a
    Ctrl-C reaches perffarm, which then kills it, rather than the program alone; it is
    killed too when ``stop_event`` is set or the timeout passes.
    """
    with tempfile.TemporaryFile() as out, contextlib.ExitStack() as record:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            # One process: it dies with perffarm (perffarm.agent.children) and is on the
            # lock's record meanwhile.
            preexec_fn=children.die_with_parent(signal.SIGKILL),
        )
        record.enter_context(children.tracked_group(proc.pid))
        stopped = False
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if stop_event is not None and stop_event.is_set():
                    stopped = True
                    break
                if deadline is not None and time.monotonic() > deadline:
                    out.write(f"\nperffarm: killed after {timeout:.0f} s\n".encode())
                    break
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                proc.wait()
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    return proc.returncode, text, stopped
