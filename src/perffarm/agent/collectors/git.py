"""Where the code under test came from, asked of the ``git`` command.

Git's own commands are the only reader of the repository (no parsing of .git by hand), run
by ``perffarm.agent.git.run_git`` (a bounded timeout, no prompt, no index lock taken). A
working tree counts as dirty when a tracked file differs from HEAD; untracked files do not
count, as with ``git describe --dirty``, because benchmark outputs and build directories
are usually untracked.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from perffarm.agent.collectors.base import CollectorContext
from perffarm.agent.git import GitError, run_git
from perffarm.model import Source

# A collector must not hold up a run: git answers these questions in milliseconds.
GIT_TIMEOUT_SECONDS = 5.0


def collect(context: CollectorContext) -> dict[str, Any] | None:
    source = source_from_git(context.cwd)
    if source == Source():
        return None
    return source.model_dump(mode="json")


def source_from_git(cwd: Path) -> Source:
    """The repository, branch, commit and state of the git checkout holding ``cwd``.

    An empty ``Source()`` outside a repository or when git is not installed.
    """
    status = _git(cwd, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if status is None:
        return Source()
    commit: str | None = None
    branch: str | None = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ").strip()
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.removeprefix("# branch.head ").strip()
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True

    commit_time: datetime | None = None
    subject: str | None = None
    if commit is not None:
        log = _git(cwd, "log", "-1", "--format=%cI%x00%s", commit)
        if log:
            iso_time, _, subject = log.rstrip("\n").partition("\x00")
            commit_time = datetime.fromisoformat(iso_time)
            subject = subject or None

    origin = _git(cwd, "config", "--get", "remote.origin.url")
    return Source(
        repository=strip_credentials(origin.strip()) if origin else None,
        branch=branch,
        commit=commit,
        commit_time=commit_time,
        dirty=dirty,
        subject=subject,
    )


def strip_credentials(url: str) -> str:
    """A remote URL without the secrets it may carry.

    HTTP(S) URLs lose their whole user part, because a token often sits where the user name
    goes (``https://TOKEN@host/...``); SSH URLs keep the user (``git@``) but lose a password.
    scp-like addresses (``git@host:path``) cannot carry a password and stay as they are.
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    keep_user = parts.scheme in {"ssh", "git+ssh", "ssh+git"} and user
    netloc = f"{user}@{hostport}" if keep_user else hostport
    return urlunsplit(parts._replace(netloc=netloc))


def _git(cwd: Path, *args: str) -> str | None:
    """stdout of a git command, or None when git is missing, fails or takes too long."""
    try:
        return run_git(*args, cwd=cwd, timeout=GIT_TIMEOUT_SECONDS)
    except GitError:
        return None
