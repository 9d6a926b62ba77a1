"""The one way perffarm runs git: bounded in time, never interactive, output readable.

Every call gets the same environment: no credential or host-key prompt
(``GIT_TERMINAL_PROMPT=0``, ssh in batch mode), no pager, no optional lock (a read must
not take the index lock a concurrent build's git needs), and ``LC_ALL=C`` so that what git
prints can be read. git runs in its own process group, so that a timeout or a Ctrl-C ends
whatever it started (``ssh``, ``git-remote-https``), not only git itself.

``run_git`` returns git's stdout or raises ``GitError``, whose message names the command
and ends with the tail of what git said.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

DEFAULT_TIMEOUT = 60.0
# How much of git's stderr an error message keeps (its end: where git says what went wrong).
STDERR_TAIL = 2000

GIT_ENVIRONMENT: Mapping[str, str] = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "LC_ALL": "C",
}


class GitError(RuntimeError):
    """git is missing, failed or ran out of time.

    ``command`` is the git command line; ``returncode`` None when git did not finish (or
    could not start); ``stderr`` the tail of what it wrote; ``missing`` True when there is
    no git to run at all.
    """

    def __init__(
        self,
        message: str,
        *,
        command: list[str],
        returncode: int | None = None,
        stderr: str = "",
        missing: bool = False,
    ) -> None:
        super().__init__(message)
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        self.missing = missing


def git_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: ``base`` (default: this process's) and GIT_ENVIRONMENT."""
    env = dict(os.environ if base is None else base)
    env.update(GIT_ENVIRONMENT)
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def run_git(*args: str, cwd: Path | str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Run ``git ARGS`` in ``cwd``; its stdout, or GitError.

    Messages: ``git is not installed (perffarm needs the git command line)``,
    ``git ARGS did not finish within N s``, ``git ARGS failed (exit N): STDERR TAIL``.
    """
    command = ["git", *args]
    shown = " ".join(command)
    try:
        proc = subprocess.Popen(
            ["git", "--no-pager", *args],
            cwd=cwd,
            env=git_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError:
        raise GitError(
            "git is not installed (perffarm needs the git command line)",
            command=command,
            missing=True,
        ) from None
    except OSError as exc:
        raise GitError(f"{shown} could not run: {exc}", command=command) from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end(proc)
        raise GitError(f"{shown} did not finish within {timeout:.0f} s", command=command) from None
    except BaseException:
        _end(proc)
        raise
    if proc.returncode != 0:
        said = (stderr.strip() or stdout.strip())[-STDERR_TAIL:]
        raise GitError(
            f"{shown} failed (exit {proc.returncode}): {said}",
            command=command,
            returncode=proc.returncode,
            stderr=said,
        )
    return stdout


def _end(proc: subprocess.Popen[str]) -> None:
    """Kill git's process group and reap git (its pipes are closed, not read)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    proc.wait()
