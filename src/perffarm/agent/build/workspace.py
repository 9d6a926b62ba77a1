"""Mirrors and build directories of the workspace, and the git operations on them.

The workspace keeps one mirror clone per repository (``git clone --mirror``, refreshed with
``git fetch --prune``) and one source directory per branch, checked out from the mirror (a
local clone, so the network is used once per fetch, not once per branch). Everything about
git goes through ``perffarm.agent.git.run_git``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from perffarm.agent.build.config import BuildConfig
from perffarm.agent.git import GitError, run_git
from perffarm.model import Source

# Cloning or fetching a large repository (PostgreSQL's) over a slow link takes long.
GIT_TIMEOUT = 3600.0

_PATTERN_CHARS = re.compile(r"[*?\[]")


class BuildError(RuntimeError):
    """A git operation failed or the build configuration does not fit the repository."""


def _key(repository: str) -> str:
    """A directory name for a repository: readable, and unique per URL."""
    tail = repository.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "repo"
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", tail)[:40]
    digest = hashlib.sha256(repository.encode()).hexdigest()[:10]
    return f"{tail}-{digest}"


def _branch_dir_name(branch: str) -> str:
    # Branch names may contain '/', which would nest directories of different branches.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", branch)
    if safe != branch:
        safe += "-" + hashlib.sha256(branch.encode()).hexdigest()[:8]
    return safe


def git(*args: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT) -> str:
    """Run git (``perffarm.agent.git.run_git``); its stdout, or BuildError with git's message."""
    try:
        return run_git(*args, cwd=cwd, timeout=timeout)
    except GitError as exc:
        raise BuildError(str(exc)) from None


class BuildWorkspace:
    """Mirrors and build directories under one root directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    # -- locations ------------------------------------------------------------------------

    def mirror_dir(self, repository: str) -> Path:
        return self.root / "mirrors" / f"{_key(repository)}.git"

    def branch_dir(self, repository: str, branch: str) -> Path:
        return self.root / "builds" / _key(repository) / _branch_dir_name(branch)

    def source_dir(self, repository: str, branch: str) -> Path:
        return self.branch_dir(repository, branch) / "source"

    def prefix(self, repository: str, branch: str) -> Path:
        return self.branch_dir(repository, branch) / "install"

    def log_dir(self, repository: str, branch: str) -> Path:
        return self.branch_dir(repository, branch) / "logs"

    # -- the mirror -----------------------------------------------------------------------

    def update(self, repository: str) -> Path:
        """Clone the mirror on first use, else fetch (pruning deleted branches)."""
        mirror = self.mirror_dir(repository)
        if (mirror / "HEAD").exists():
            git("fetch", "--prune", "--quiet", "origin", cwd=mirror)
        else:
            mirror.parent.mkdir(parents=True, exist_ok=True)
            partial = mirror.with_name(mirror.name + ".partial")
            if partial.exists():
                remove_tree(partial)
            # Clone beside the final name: an interrupted clone never looks like a mirror.
            # From a local path, copies rather than hard links: the mirror is the agent's
            # own, private like all it writes, not files shared with (and as readable as)
            # the repository it came from.
            git(
                "clone",
                "--mirror",
                "--quiet",
                "--no-hardlinks",
                _absolute_if_path(repository),
                str(partial),
            )
            partial.rename(mirror)
        return mirror

    def branch_heads(self, repository: str) -> dict[str, str]:
        """Every branch of the mirror and its commit (without fetching)."""
        mirror = self.mirror_dir(repository)
        if not (mirror / "HEAD").exists():
            raise BuildError(f"no mirror of {repository} yet (call update first)")
        out = git(
            "for-each-ref",
            "--format=%(refname:lstrip=2)%00%(objectname)",
            "refs/heads/",
            cwd=mirror,
        )
        heads: dict[str, str] = {}
        for line in out.splitlines():
            name, _, commit = line.partition("\0")
            if name and commit:
                heads[name] = commit
        return heads

    def resolve_branches(self, config: BuildConfig, *, fetch: bool = True) -> dict[str, str]:
        """Branch -> head commit for every name and pattern of the config, in config order.

        A name that is not a branch, or a pattern that matches none, is an error: a typo
        would otherwise silently benchmark nothing.
        """
        if fetch:
            self.update(config.repository)
        heads = self.branch_heads(config.repository)
        resolved: dict[str, str] = {}
        for wanted in config.branches:
            if _PATTERN_CHARS.search(wanted):
                matches = sorted(name for name in heads if fnmatch.fnmatchcase(name, wanted))
                if not matches:
                    raise BuildError(
                        f"no branch of {config.repository} matches {wanted!r} "
                        f"(branches: {some_branches(heads)})"
                    )
                for name in matches:
                    resolved.setdefault(name, heads[name])
            elif wanted in heads:
                resolved.setdefault(wanted, heads[wanted])
            else:
                raise BuildError(
                    f"{config.repository} has no branch {wanted!r} "
                    f"(branches: {some_branches(heads)})"
                )
        return resolved

    def commit_info(self, repository: str, commit: str, branch: str | None = None) -> Source:
        """The run document's ``source`` for a commit of the mirror."""
        out = git(
            "show",
            "-s",
            "--format=%H%x00%cI%x00%s",
            commit,
            "--",
            cwd=self.mirror_dir(repository),
        )
        full, committed, subject = [*out.rstrip("\n").split("\0"), "", "", ""][:3]
        return Source(
            repository=repository,
            branch=branch,
            commit=full,
            commit_time=datetime.fromisoformat(committed),
            dirty=False,
            subject=subject or None,
        )

    # -- build directories ----------------------------------------------------------------

    def checkout(
        self,
        repository: str,
        branch: str,
        commit: str,
        *,
        clean: bool = True,
        log: list[str] | None = None,
    ) -> Path:
        """Put ``commit`` into the branch's source directory and return that directory;
        git's output is appended to ``log``.

        The checkout is a clone of the local mirror (hard links, no network), detached at
        the commit, so that a branch moved or deleted upstream cannot change it.
        """
        mirror = self.mirror_dir(repository)
        source = self.source_dir(repository, branch)
        log = log if log is not None else []
        if not (source / ".git").exists():
            if source.exists():
                remove_tree(source)
            source.parent.mkdir(parents=True, exist_ok=True)
            log.append(git("clone", "--no-checkout", "--quiet", str(mirror), str(source)))
        else:
            log.append(git("fetch", "--quiet", "--prune", "origin", cwd=source))
        log.append(git("checkout", "--force", "--quiet", "--detach", commit, cwd=source))
        if clean:
            log.append(git("clean", "-ffdxq", cwd=source))
        log.append(git("log", "-1", "--format=checked out %H %s", cwd=source))
        return source


@dataclass(frozen=True)
class BuildDirectory:
    """One branch's build directory, for pruning."""

    path: Path
    branch_exists: bool | None
    """None when the repository has no mirror any more to tell."""
    last_built: datetime
    size: int


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (links not followed)."""
    total = 0
    for entry in path.rglob("*"):
        try:
            if entry.is_file() and not entry.is_symlink():
                total += entry.stat().st_size
        except OSError:
            continue
    return total


def _last_built(directory: Path) -> datetime:
    """When the branch was last built: the newest of the directory and its logs."""
    stamps = [directory.stat().st_mtime]
    logs = directory / "logs"
    if logs.is_dir():
        stamps += [entry.stat().st_mtime for entry in logs.iterdir()]
    return datetime.fromtimestamp(max(stamps), tz=UTC)


def build_directories(root: Path) -> list[BuildDirectory]:
    """Every branch build directory under a workspace root, oldest build first, with
    whether its branch still exists in the repository's mirror."""
    found: list[BuildDirectory] = []
    builds = root / "builds"
    if not builds.is_dir():
        return found
    for repository in sorted(builds.iterdir()):
        if not repository.is_dir():
            continue
        mirror = root / "mirrors" / f"{repository.name}.git"
        live: set[str] | None = None
        if (mirror / "HEAD").exists():
            out = git("for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads/", cwd=mirror)
            live = {_branch_dir_name(name) for name in out.splitlines() if name}
        for directory in sorted(repository.iterdir()):
            if directory.is_dir():
                found.append(
                    BuildDirectory(
                        path=directory,
                        branch_exists=None if live is None else directory.name in live,
                        last_built=_last_built(directory),
                        size=tree_size(directory),
                    )
                )
    return sorted(found, key=lambda build: build.last_built)


def remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _absolute_if_path(repository: str) -> str:
    """A local path made absolute (git runs elsewhere); URLs unchanged."""
    if "://" in repository or re.match(r"^[\w.-]+@[\w.-]+:", repository):
        return repository
    path = Path(repository).expanduser()
    return str(path.resolve()) if path.exists() else repository


def some_branches(heads: dict[str, str], limit: int = 10) -> str:
    names = sorted(heads)
    if not names:
        return "none"
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
