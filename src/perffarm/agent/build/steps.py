"""Running a build: the checkout as the first step, then the suite's steps one after the
other in the branch's source directory; each step's output (stdout and stderr interleaved,
as a terminal would show it) becomes a log attachment, and the first failing step ends the
build, which is then recorded as failed with every log so far.

A step may print a secret (``echo $TOKEN``): its output goes to a file without a name
(``tempfile.TemporaryFile``, gone with the process however it ends), and only the scrubbed
copy (``perffarm.redact``) is written to the step's log.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from perffarm.agent import children
from perffarm.agent.build.config import CHECKOUT_STEP, BuildConfig
from perffarm.agent.build.workspace import BuildError, BuildWorkspace, remove_tree, some_branches
from perffarm.model import Attachment, Build, BuildStep, Source
from perffarm.redact import hide_values, hide_values_in_bytes

# After SIGTERM, how long a timed-out step gets to exit before its group gets SIGKILL.
KILL_GRACE_SECONDS = 5.0
LOG_MEDIA_TYPE = "text/plain; charset=utf-8"


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
    secrets: Sequence[str] = (),
) -> BuildOutcome:
    """Check out ``branch`` (at ``commit``, default its head in the mirror) and run the steps.

    ``render`` fills placeholders in commands and environment values (the runner's, with
    ``build_variables`` included; without it only ``{{ build.* }}`` is filled). ``on_step``
    is called with each step before (False) and after (True) it runs. ``secrets`` are
    hidden in every log (``redact.hide_values``). A failing checkout or step ends the
    build: the outcome is not succeeded and holds every log so far.
    KeyboardInterrupt kills the running step's process group and propagates.
    """
    repository = config.repository
    if fetch or not workspace.mirror_dir(repository).joinpath("HEAD").exists():
        workspace.update(repository)
    if commit is None:
        heads = workspace.branch_heads(repository)
        if branch not in heads:
            raise BuildError(
                f"{repository} has no branch {branch!r} (branches: {some_branches(heads)})"
            )
        commit = heads[branch]
    variables = build_variables(config, workspace, branch, commit)["build"]
    render = render or _render_build_only(variables)
    source = workspace.commit_info(repository, commit, branch)
    prefix = Path(variables["prefix"])
    log_dir = workspace.log_dir(repository, branch)
    if log_dir.exists():
        remove_tree(log_dir)
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
    output = hide_values("".join(lines), secrets)
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
            secrets=secrets,
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
    command: str,
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    timeout: float | None,
    secrets: Sequence[str] = (),
) -> int:
    """Run one shell command, its output scrubbed into its log; its exit status (negative:
    a signal).

    The step gets its own process group so that a timeout or Ctrl-C stops everything it
    started (make -j spawns many), not only the shell; a guardian leads the group and kills
    it if perffarm dies (perffarm.agent.children), and the group is on the lock's record.
    Its output goes to a file without a name, so that what it prints in clear is never a
    file anyone could find.
    """
    with (
        tempfile.TemporaryFile(dir=log_path.parent) as output,
        contextlib.ExitStack() as record,
    ):
        proc = subprocess.Popen(
            children.guarded(["/bin/sh", "-c", command]),
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=children.die_with_parent(),
        )
        record.enter_context(children.tracked_group(proc.pid))
        note = b""
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            note = f"\nperffarm: step killed after its timeout of {timeout:g} s\n".encode()
            status = proc.returncode if proc.returncode not in (None, 0) else -signal.SIGKILL
        except BaseException:
            _kill_group(proc)
            _write_log(log_path, command, output, secrets)
            raise
        _write_log(log_path, command, output, secrets, note)
    return status


def _write_log(
    log_path: Path, command: str, output: IO[bytes], secrets: Sequence[str], note: bytes = b""
) -> None:
    """The step's log: its command line and its output, secrets hidden."""
    output.seek(0)
    text = f"$ {command}\n".encode() + output.read() + note
    log_path.write_bytes(hide_values_in_bytes(text, secrets))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 30.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
