"""Builds from a real git repository made by the test, with the real git command line."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

from perffarm.agent.build import (
    BuildConfig,
    BuildError,
    BuildWorkspace,
    build_variables,
    run_build,
)
from perffarm.model import Build, BuildStep, RunStatus

GOOD_BUILD = """#!/bin/sh
set -e
echo "building $PERFFARM_BUILD_BRANCH into $1"
mkdir -p "$1/bin"
printf '#!/bin/sh\\necho tool of main\\n' > "$1/bin/tool"
chmod +x "$1/bin/tool"
echo "warning: something on stderr" >&2
"""

BAD_BUILD = """#!/bin/sh
echo "compiling feature"
echo "feature.c:3: error: expected ';'" >&2
exit 3
"""


def _git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    return subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


class Upstream:
    """A bare repository and a working clone that pushes to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "upstream.git"
        self.work = root / "work"
        self.bare.mkdir()
        _git("init", "--bare", "--quiet", str(self.bare), cwd=root)
        _git("clone", "--quiet", str(self.bare), str(self.work), cwd=root)

    def commit(self, branch: str, files: dict[str, str], message: str) -> str:
        if _git("branch", "--list", branch, cwd=self.work):
            _git("checkout", "--quiet", branch, cwd=self.work)
        else:
            _git("checkout", "--quiet", "-b", branch, cwd=self.work)
        for name, text in files.items():
            path = self.work / name
            path.write_text(text)
            path.chmod(0o755)
        _git("add", "-A", cwd=self.work)
        _git("commit", "--quiet", "-m", message, cwd=self.work)
        _git("push", "--quiet", "origin", branch, cwd=self.work)
        return _git("rev-parse", "HEAD", cwd=self.work)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path)
    repo.commit("main", {"build.sh": GOOD_BUILD}, "a build that works")
    repo.commit("feature", {"build.sh": BAD_BUILD}, "a build that breaks")
    return repo


def _config(upstream: Upstream, branches: list[str] | None = None, **extra) -> BuildConfig:
    return BuildConfig.model_validate(
        {
            "repository": str(upstream.bare),
            "branches": branches or ["main", "feature"],
            "steps": [
                {
                    "name": "configure",
                    "run": "echo configuring $STAGE in $(pwd)",
                    "env": {"STAGE": "configure-stage"},
                },
                {"name": "build", "run": "./build.sh {{ build.prefix }}"},
                {"name": "install", "run": "test -x {{ build.prefix }}/bin/tool && echo installed"},
            ],
            **extra,
        }
    )


def test_good_branch_builds_and_failing_branch_keeps_its_logs(
    upstream: Upstream, tmp_path: Path
) -> None:
    config = _config(upstream)
    workspace = BuildWorkspace(tmp_path / "farm")
    heads = workspace.resolve_branches(config)
    assert list(heads) == ["main", "feature"]

    seen: list[tuple[str, bool]] = []
    good = run_build(
        config, workspace, "main", on_step=lambda step, done: seen.append((step.name, done))
    )
    assert good.succeeded and good.build.succeeded
    assert [s.name for s in good.build.steps] == ["checkout", "configure", "build", "install"]
    assert all(s.exit_status == 0 and s.seconds is not None for s in good.build.steps)
    assert seen[:2] == [("checkout", False), ("checkout", True)]
    assert len(seen) == 8
    assert good.source.commit == heads["main"]
    assert good.source.branch == "main"
    assert good.source.subject == "a build that works"
    assert good.source.commit_time is not None and good.source.commit_time.tzinfo is not None
    assert (good.prefix / "bin" / "tool").exists()
    logs = {a.name: a.data().decode() for a in good.attachments}
    assert [s.log_attachment for s in good.build.steps] == list(logs)
    configure_log = logs["build/01-configure.log"]
    assert f"configuring configure-stage in {good.source_dir}" in configure_log
    build_log = logs["build/02-build.log"]
    assert f"building main into {good.prefix}" in build_log
    assert "warning: something on stderr" in build_log  # stderr interleaved into the log
    assert "installed" in logs["build/03-install.log"]
    Build.model_validate(good.build.model_dump())  # the run document accepts it

    bad = run_build(config, workspace, "feature")
    assert not bad.succeeded and not bad.build.succeeded
    assert [s.name for s in bad.build.steps] == ["checkout", "configure", "build"]
    failing: BuildStep = bad.build.steps[-1]
    assert failing.exit_status == 3
    log = next(a for a in bad.attachments if a.name == failing.log_attachment).data().decode()
    assert "compiling feature" in log and "feature.c:3: error: expected ';'" in log
    assert "build" in (bad.error or "") and "3" in (bad.error or "")
    assert RunStatus.BUILD_FAILED.value == "build-failed"
    # Each branch has its own build directory.
    assert good.source_dir != bad.source_dir
    assert good.prefix != bad.prefix


def test_mirror_is_reused_and_fetch_sees_new_commits(upstream: Upstream, tmp_path: Path) -> None:
    config = _config(upstream, ["main"])
    workspace = BuildWorkspace(tmp_path / "farm")
    first = workspace.resolve_branches(config)["main"]
    mirror = workspace.mirror_dir(config.repository)
    marker = mirror / "perffarm-test-marker"
    marker.write_text("a fresh clone would not have this")

    new = upstream.commit("main", {"NEWS": "more\n"}, "second commit")
    assert new != first
    assert workspace.resolve_branches(config, fetch=False)["main"] == first
    assert workspace.resolve_branches(config)["main"] == new
    assert marker.exists()  # fetched into the same mirror, not cloned again
    assert len(list((tmp_path / "farm" / "mirrors").iterdir())) == 1

    outcome = run_build(config, workspace, "main")
    assert outcome.succeeded and outcome.source.commit == new
    assert outcome.source.subject == "second commit"
    assert (outcome.source_dir / "NEWS").exists()


def test_branch_patterns_expand_against_the_mirror(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit("REL_16_STABLE", {"v": "16\n"}, "16")
    upstream.commit("REL_17_STABLE", {"v": "17\n"}, "17")
    workspace = BuildWorkspace(tmp_path / "farm")
    heads = workspace.resolve_branches(_config(upstream, ["REL_*_STABLE", "main"]))
    assert list(heads) == ["REL_16_STABLE", "REL_17_STABLE", "main"]

    with pytest.raises(BuildError, match=r"no branch .* matches 'REL_\*_BROKEN'"):
        workspace.resolve_branches(_config(upstream, ["REL_*_BROKEN"]), fetch=False)
    with pytest.raises(BuildError, match=r"has no branch 'nope'.*feature"):
        workspace.resolve_branches(_config(upstream, ["nope"]), fetch=False)


def test_checkout_is_clean_and_follows_the_branch(upstream: Upstream, tmp_path: Path) -> None:
    config = _config(upstream, ["main"])
    workspace = BuildWorkspace(tmp_path / "farm")
    workspace.resolve_branches(config)
    first = run_build(config, workspace, "main")
    leftover = first.source_dir / "leftover.o"
    leftover.write_text("stale build product")
    upstream.commit("main", {"build.sh": GOOD_BUILD + "echo second\n"}, "change the build")
    second = run_build(config, workspace, "main", fetch=True)
    assert second.succeeded
    assert second.source_dir == first.source_dir
    assert not leftover.exists()  # git clean -ffdx before building
    assert "second" in second.attachments[2].data().decode()


def test_step_timeout_kills_the_whole_process_group(upstream: Upstream, tmp_path: Path) -> None:
    config = BuildConfig.model_validate(
        {
            "repository": str(upstream.bare),
            "branches": ["main"],
            "steps": [
                {
                    "name": "hang",
                    "timeout": 1,
                    "run": "sleep 600 & echo $! > child.pid; echo started; wait",
                }
            ],
        }
    )
    workspace = BuildWorkspace(tmp_path / "farm")
    outcome = run_build(config, workspace, "main")
    assert not outcome.succeeded
    step = outcome.build.steps[-1]
    assert step.name == "hang" and step.exit_status not in (0, None)
    log = outcome.attachments[-1].data().decode()
    assert "started" in log and "timeout" in log
    child = int((outcome.source_dir / "child.pid").read_text())
    assert _wait_dead(child), "the step's background child survived the timeout"


def test_render_fills_placeholders_and_build_variables(upstream: Upstream, tmp_path: Path) -> None:
    config = BuildConfig.model_validate(
        {
            "repository": str(upstream.bare),
            "branches": ["main"],
            "env": {"TOKEN": "{{ secure.token }}"},
            "steps": [{"name": "show", "run": "echo prefix={{ build.prefix }} token=$TOKEN"}],
        }
    )
    workspace = BuildWorkspace(tmp_path / "farm")
    variables = build_variables(config, workspace, "main")
    assert set(variables["build"]) >= {"prefix", "source_dir", "branch", "directory"}
    namespaces = {**variables, "secure": {"token": "s3cret"}}

    def render(text: str) -> str:
        for ns, values in namespaces.items():
            for key, value in values.items():
                text = text.replace(f"{{{{ {ns}.{key} }}}}", str(value))
        return text

    outcome = run_build(config, workspace, "main", render=render)
    assert outcome.succeeded
    log = outcome.attachments[-1].data().decode()
    assert f"prefix={variables['build']['prefix']} token=s3cret" in log
    # The recorded command is the suite's text, never the rendered one.
    assert outcome.build.steps[-1].command == config.steps[0].run
    assert str(outcome.prefix) == variables["build"]["prefix"]


def test_step_logs_on_disk_hold_secrets_hidden(upstream: Upstream, tmp_path: Path) -> None:
    # Issue 16, case 7: `echo $TOKEN` in a step left the secret in clear in its log file.
    secret = "s3cret-token-value"
    config = BuildConfig.model_validate(
        {
            "repository": str(upstream.bare),
            "branches": ["main"],
            "env": {"TOKEN": secret},
            "steps": [
                {"name": "echo", "run": f"echo token=$TOKEN; echo {secret} >&2"},
                {"name": "hang", "run": f"echo {secret}; sleep 30", "timeout": 0.5},
            ],
        }
    )
    workspace = BuildWorkspace(tmp_path / "farm")
    outcome = run_build(config, workspace, "main", secrets=[secret])
    assert [step.exit_status == 0 for step in outcome.build.steps] == [True, True, False]
    logs = sorted(workspace.log_dir(str(upstream.bare), "main").iterdir())
    assert [log.name for log in logs] == ["00-checkout.log", "01-echo.log", "02-hang.log"]
    assert logs[1].read_text() == "$ echo token=$TOKEN; echo *** >&2\ntoken=***\n***\n"
    assert "***\n" in logs[2].read_text() and "timeout" in logs[2].read_text()
    for path in workspace.root.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert [a.data() for a in outcome.attachments[1:]] == [log.read_bytes() for log in logs[1:]]


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="branchs"):
        BuildConfig.model_validate({"repository": "x", "branchs": ["main"], "steps": []})
    with pytest.raises(ValidationError, match="repeated: make"):
        BuildConfig.model_validate(
            {
                "repository": "x",
                "branches": ["main"],
                "steps": [{"name": "make", "run": "make"}, {"name": "make", "run": "make install"}],
            }
        )
    with pytest.raises(ValidationError, match="letters, digits"):
        BuildConfig.model_validate(
            {
                "repository": "x",
                "branches": "main",
                "steps": [{"name": "a b", "run": "true"}],
            }
        )
    with pytest.raises(ValidationError, match="reserved"):
        BuildConfig.model_validate(
            {
                "repository": "x",
                "branches": "main",
                "steps": [{"name": "checkout", "run": "x"}],
            }
        )
    assert BuildConfig.model_validate(
        {"repository": "x", "branches": "main", "steps": [{"name": "b", "run": "make"}]}
    ).branches == ["main"]


def test_unknown_repository_is_a_build_error(tmp_path: Path) -> None:
    config = BuildConfig.model_validate(
        {
            "repository": str(tmp_path / "missing.git"),
            "branches": ["main"],
            "steps": [{"name": "b", "run": "true"}],
        }
    )
    workspace = BuildWorkspace(tmp_path / "farm")
    with pytest.raises(BuildError, match="git clone"):
        workspace.resolve_branches(config)
    # A failed clone leaves nothing that looks like a mirror.
    assert not workspace.mirror_dir(config.repository).exists()


def _wait_dead(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_during_a_step_kills_it(upstream: Upstream, tmp_path: Path) -> None:
    config = BuildConfig.model_validate(
        {
            "repository": str(upstream.bare),
            "branches": ["main"],
            "steps": [{"name": "long", "run": "sleep 600 & echo $! > child.pid; wait"}],
        }
    )
    workspace = BuildWorkspace(tmp_path / "farm")
    workspace.resolve_branches(config)
    pid_file = workspace.source_dir(config.repository, "main") / "child.pid"

    def interrupt(signum, frame):  # what the runner's Ctrl-C handler does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(KeyboardInterrupt):
            run_build(config, workspace, "main")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _wait_dead(int(pid_file.read_text()))


def test_building_an_unknown_commit_is_an_error(upstream: Upstream, tmp_path: Path) -> None:
    config = _config(upstream, ["main"])
    workspace = BuildWorkspace(tmp_path / "farm")
    heads = workspace.resolve_branches(config)
    outcome = run_build(config, workspace, "main", commit=heads["main"])
    assert outcome.succeeded
    with pytest.raises(BuildError):
        run_build(config, workspace, "main", commit="f" * 40)  # not in the mirror at all
