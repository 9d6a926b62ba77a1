"""Builds of the software under test from git, branch by branch.

The workspace keeps one mirror clone per repository (``git clone --mirror``, refreshed with
``git fetch --prune``) and one build directory per branch, checked out from the mirror
(a local clone, so the network is used once per fetch, not once per branch). A build runs
the suite's steps one after the other in the branch's source directory; each step's output
(stdout and stderr interleaved, as a terminal would show it) becomes a log attachment, and
the first failing step ends the build, which is then recorded as failed with every log so
far. Everything about git goes through the ``git`` command line.

Layout under the workspace root::

    mirrors/<repo-key>.git                the mirror
    builds/<repo-key>/<branch>/source     the checkout; steps run here
    builds/<repo-key>/<branch>/install    {{ build.prefix }}
    builds/<repo-key>/<branch>/logs       one log per step of the last build
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from perffarm.agent.git import GitError, run_git
from perffarm.model import Attachment, Build, BuildStep, Source

# Cloning or fetching a large repository (PostgreSQL's) over a slow link takes long.
GIT_TIMEOUT = 3600.0
# After SIGTERM, how long a timed-out step gets to exit before its group gets SIGKILL.
KILL_GRACE_SECONDS = 5.0
LOG_MEDIA_TYPE = "text/plain; charset=utf-8"
CHECKOUT_STEP = "checkout"

_PATTERN_CHARS = re.compile(r"[*?\[]")
_STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BuildError(RuntimeError):
    """A git operation failed or the build configuration does not fit the repository."""


class BuildStepConfig(BaseModel):
    """One step of the ``build:`` section."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name (configure, build, install); names the log.")
    run: str = Field(min_length=1, description="Shell command, run in the source directory.")
    env: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0, description="Seconds; kill after.")

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, name: str) -> str:
        if not _STEP_NAME.match(name):
            raise ValueError(
                f"step name {name!r} must be letters, digits, '.', '_' or '-' "
                "(it names the step's log file)"
            )
        if name == CHECKOUT_STEP:
            raise ValueError(f"step name {CHECKOUT_STEP!r} is reserved for the git checkout")
        return name


class BuildConfig(BaseModel):
    """The suite's ``build:`` section."""

    model_config = ConfigDict(extra="forbid")

    repository: str = Field(min_length=1, description="URL or path of the git repository.")
    branches: list[str] = Field(
        min_length=1, description="Branch names or fnmatch patterns such as REL_*_STABLE."
    )
    steps: list[BuildStepConfig] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict, description="For every step.")
    work_dir: str | None = Field(
        default=None, description="Where mirrors and build directories live."
    )
    clean: bool = Field(
        default=True,
        description="Remove untracked files (git clean -ffdx) before building; false keeps "
        "the previous build's products for an incremental build.",
    )

    @field_validator("branches", mode="before")
    @classmethod
    def _one_branch(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("branches")
    @classmethod
    def _no_empty_branch(cls, branches: list[str]) -> list[str]:
        for branch in branches:
            if not branch.strip():
                raise ValueError("a branch name must not be empty")
        return branches

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[BuildStepConfig]) -> list[BuildStepConfig]:
        names = [step.name for step in steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique; repeated: {', '.join(duplicates)}")
        return steps


@dataclass
class BuildOutcome:
    """What ``run_build`` gives the runner: the run document's ``build`` and ``source``,
    the logs to attach, and the install prefix for the measurements."""

    build: Build
    attachments: list[Attachment]
    source: Source
    prefix: Path
    source_dir: Path
    succeeded: bool
    error: str | None = None
    logs: dict[str, Path] = field(default_factory=dict)


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
                _remove_tree(partial)
            # Clone beside the final name: an interrupted clone never looks like a mirror.
            git("clone", "--mirror", "--quiet", _absolute_if_path(repository), str(partial))
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
                        f"(branches: {_some(heads)})"
                    )
                for name in matches:
                    resolved.setdefault(name, heads[name])
            elif wanted in heads:
                resolved.setdefault(wanted, heads[wanted])
            else:
                raise BuildError(
                    f"{config.repository} has no branch {wanted!r} (branches: {_some(heads)})"
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
                _remove_tree(source)
            source.parent.mkdir(parents=True, exist_ok=True)
            log.append(git("clone", "--no-checkout", "--quiet", str(mirror), str(source)))
        else:
            log.append(git("fetch", "--quiet", "--prune", "origin", cwd=source))
        log.append(git("checkout", "--force", "--quiet", "--detach", commit, cwd=source))
        if clean:
            log.append(git("clean", "-ffdxq", cwd=source))
        log.append(git("log", "-1", "--format=checked out %H %s", cwd=source))
        return source


def build_variables(
    config: BuildConfig, workspace: BuildWorkspace, branch: str, commit: str | None = None
) -> dict[str, dict[str, str]]:
    """The ``build`` placeholder namespace: ``{{ build.prefix }}``, ``{{ build.source_dir }}``,
    ``{{ build.branch }}``, ``{{ build.commit }}``, ``{{ build.directory }}``.

    The paths are known before anything is checked out, so the runner can make its
    renderer first and hand it to ``run_build``.
    """
    values = {
        "prefix": str(workspace.prefix(config.repository, branch)),
        "source_dir": str(workspace.source_dir(config.repository, branch)),
        "directory": str(workspace.branch_dir(config.repository, branch)),
        "branch": branch,
        "repository": config.repository,
    }
    if commit is not None:
        values["commit"] = commit
    return {"build": values}


_PLACEHOLDER = re.compile(r"\{\{\s*build\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _render_build_only(variables: dict[str, str]) -> Callable[[str], str]:
    def render(text: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in variables:
                raise BuildError(f"unknown placeholder {{{{ build.{key} }}}}")
            return variables[key]

        return _PLACEHOLDER.sub(substitute, text)

    return render


def run_build(
    config: BuildConfig,
    workspace: BuildWorkspace,
    branch: str,
    *,
    render: Callable[[str], str] | None = None,
    commit: str | None = None,
    on_step: Callable[[BuildStep, bool], None] | None = None,
    fetch: bool = False,
) -> BuildOutcome:
    """Check out ``branch`` (at ``commit``, default its head in the mirror) and run the steps.

    ``render`` fills placeholders in commands and environment values (the runner's, with
    ``build_variables`` included; without it only ``{{ build.* }}`` is filled). ``on_step``
    is called with each step before (False) and after (True) it runs. A failing checkout
    or step ends the build: the outcome is not succeeded and holds every log so far.
    KeyboardInterrupt kills the running step's process group and propagates.
    """
    repository = config.repository
    if fetch or not workspace.mirror_dir(repository).joinpath("HEAD").exists():
        workspace.update(repository)
    if commit is None:
        heads = workspace.branch_heads(repository)
        if branch not in heads:
            raise BuildError(f"{repository} has no branch {branch!r} (branches: {_some(heads)})")
        commit = heads[branch]
    variables = build_variables(config, workspace, branch, commit)["build"]
    render = render or _render_build_only(variables)
    source = workspace.commit_info(repository, commit, branch)
    prefix = Path(variables["prefix"])
    log_dir = workspace.log_dir(repository, branch)
    if log_dir.exists():
        _remove_tree(log_dir)
    log_dir.mkdir(parents=True)
    outcome = BuildOutcome(
        build=Build(directory=variables["directory"], steps=[], succeeded=True),
        attachments=[],
        source=source,
        prefix=prefix,
        source_dir=Path(variables["source_dir"]),
        succeeded=True,
    )

    # The checkout is a step like the others: its time and output belong to the build.
    step = BuildStep(name=CHECKOUT_STEP, command=f"git checkout --detach {commit}")
    if on_step:
        on_step(step, False)
    started = time.monotonic()
    log_path = log_dir / f"00-{CHECKOUT_STEP}.log"
    lines: list[str] = []
    try:
        workspace.checkout(repository, branch, commit, clean=config.clean, log=lines)
        step.exit_status = 0
    except BuildError as exc:
        lines.append(f"{exc}\n")
        step.exit_status = 1
    output = "".join(lines)
    step.seconds = round(time.monotonic() - started, 6)
    log_path.write_text(output)
    _finish_step(outcome, step, log_path, f"build/00-{CHECKOUT_STEP}.log", on_step)
    if step.exit_status != 0:
        return _failed(outcome, f"checkout of {branch} at {commit[:12]} failed")

    prefix.mkdir(parents=True, exist_ok=True)
    base_env = dict(os.environ)
    base_env.update(
        PERFFARM_BUILD_PREFIX=str(prefix),
        PERFFARM_BUILD_SOURCE_DIR=str(outcome.source_dir),
        PERFFARM_BUILD_BRANCH=branch,
        PERFFARM_BUILD_COMMIT=commit,
    )
    base_env.update({key: render(value) for key, value in config.env.items()})
    for number, step_config in enumerate(config.steps, start=1):
        step = BuildStep(name=step_config.name, command=step_config.run)
        env = dict(base_env)
        env.update({key: render(value) for key, value in step_config.env.items()})
        # The rendered command may hold secrets: it is run, never recorded.
        command = render(step_config.run)
        if on_step:
            on_step(step, False)
        log_name = f"{number:02d}-{step_config.name}.log"
        log_path = log_dir / log_name
        started = time.monotonic()
        step.exit_status = _run_step(
            command,
            cwd=outcome.source_dir,
            env=env,
            log_path=log_path,
            timeout=step_config.timeout,
        )
        step.seconds = round(time.monotonic() - started, 6)
        _finish_step(outcome, step, log_path, f"build/{log_name}", on_step)
        if step.exit_status != 0:
            return _failed(
                outcome,
                f"build step {step_config.name!r} failed with exit status "
                f"{step.exit_status} (log: build/{log_name})",
            )
    return outcome


def _finish_step(
    outcome: BuildOutcome,
    step: BuildStep,
    log_path: Path,
    attachment_name: str,
    on_step: Callable[[BuildStep, bool], None] | None,
) -> None:
    step.log_attachment = attachment_name
    outcome.build.steps.append(step)
    outcome.logs[attachment_name] = log_path
    outcome.attachments.append(
        Attachment.from_bytes(attachment_name, log_path.read_bytes(), media_type=LOG_MEDIA_TYPE)
    )
    if on_step:
        on_step(step, True)


def _failed(outcome: BuildOutcome, error: str) -> BuildOutcome:
    outcome.succeeded = False
    outcome.build.succeeded = False
    outcome.error = error
    return outcome


def _run_step(
    command: str, *, cwd: Path, env: dict[str, str], log_path: Path, timeout: float | None
) -> int:
    """Run one shell command with output into its log; its exit status (negative: signal).

    The step gets its own process group so that a timeout or Ctrl-C stops everything it
    started (make -j spawns many), not only the shell.
    """
    with log_path.open("wb") as log:
        log.write(f"$ {command}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            log.write(f"\nperffarm: step killed after its timeout of {timeout:g} s\n".encode())
            return proc.returncode if proc.returncode not in (None, 0) else -signal.SIGKILL
        except BaseException:
            _kill_group(proc)
            raise
    return status


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 30.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _absolute_if_path(repository: str) -> str:
    """A local path made absolute (git runs elsewhere); URLs unchanged."""
    if "://" in repository or re.match(r"^[\w.-]+@[\w.-]+:", repository):
        return repository
    path = Path(repository).expanduser()
    return str(path.resolve()) if path.exists() else repository


def _some(heads: dict[str, str], limit: int = 10) -> str:
    names = sorted(heads)
    if not names:
        return "none"
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


__all__ = [
    "BuildConfig",
    "BuildError",
    "BuildOutcome",
    "BuildStepConfig",
    "BuildWorkspace",
    "build_variables",
    "git",
    "run_build",
]
