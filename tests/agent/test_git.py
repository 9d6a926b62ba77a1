"""The one git runner, with the real git command line."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from perffarm.agent.git import GitError, run_git


def test_stdout_of_a_command(tmp_path: Path) -> None:
    run_git("init", "--quiet", "-b", "main", str(tmp_path))
    assert run_git("symbolic-ref", "--short", "HEAD", cwd=tmp_path) == "main\n"


def test_a_failure_names_the_command_and_ends_with_what_git_said(tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        run_git("rev-parse", "--verify", "no-such-ref", cwd=tmp_path)
    error = caught.value
    assert str(error).startswith("git rev-parse --verify no-such-ref failed (exit 128): ")
    assert "not a git repository" in error.stderr
    assert error.returncode == 128 and not error.missing
    assert error.command == ["git", "rev-parse", "--verify", "no-such-ref"]


def test_the_environment_never_prompts_pages_or_localises(tmp_path: Path) -> None:
    printed = run_git("-c", "alias.environment=!env", "environment", cwd=tmp_path)
    environment = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    assert environment["GIT_TERMINAL_PROMPT"] == "0"
    assert environment["GIT_PAGER"] == "cat" and environment["PAGER"] == "cat"
    assert environment["LC_ALL"] == "C"
    assert environment["GIT_OPTIONAL_LOCKS"] == "0"
    assert "BatchMode=yes" in environment["GIT_SSH_COMMAND"]


def test_a_timeout_ends_git_and_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(GitError, match=r"^git -c alias.hang=.* hang did not finish within 1 s$"):
        run_git("-c", f"alias.hang=!echo $$ > {pid_file}; sleep 60", "hang", timeout=1)
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert not alive, "the shell git started outlived the timeout"


def test_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GitError, match=r"^git is not installed") as caught:
        run_git("--version")
    assert caught.value.missing and caught.value.returncode is None
