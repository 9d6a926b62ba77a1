"""`perffarm run` with a `build:` section: each branch head built from git, then measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from perffarm.agent.store import LocalStore


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repository(root: Path) -> dict[str, str]:
    """main builds a `hello` program; broken's build script fails."""
    work = root / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "build.sh").write_text(
        "#!/bin/sh\nset -e\necho building $(git rev-parse --short HEAD)\n"
        'mkdir -p "$1/bin"\nprintf \'#!/bin/sh\\necho hello from main\\n\' > "$1/bin/hello"\n'
        'chmod +x "$1/bin/hello"\n'
    )
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "a working build", cwd=work)
    git("checkout", "-q", "-b", "broken", cwd=work)
    (work / "build.sh").write_text("#!/bin/sh\necho 'compiler: error in foo.c' >&2\nexit 2\n")
    git("commit", "-q", "-am", "break the build", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    upstream = root / "upstream.git"
    git("clone", "-q", "--bare", str(work), str(upstream), cwd=root)
    return {
        "main": git("rev-parse", "main", cwd=work),
        "broken": git("rev-parse", "broken", cwd=work),
    }


def test_each_branch_head_is_built_and_a_broken_build_is_stored_with_its_log(tmp_path, store_path):
    heads = make_repository(tmp_path)
    suite = tmp_path / "farm.yaml"
    suite.write_text(
        "project: farm\n"
        "repeat: 2\n"
        "sampler: {enabled: false}\n"
        "build:\n"
        "  repository: upstream.git\n"
        "  branches: [main, broken]\n"
        f"  work_dir: {tmp_path / 'builds'}\n"
        "  steps:\n"
        "    - name: compile\n"
        "      run: sh build.sh {{ build.prefix }}\n"
        "measurements:\n"
        "  - name: hello\n"
        "    type: command\n"
        "    command: ['{{ build.prefix }}/bin/hello']\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "perffarm.commands", "run", str(suite), "--json"],
        env={**os.environ, "PERFFARM_STORE": str(store_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # one build failed
    summaries = json.loads(done.stdout)
    assert sorted(item["status"] for item in summaries) == ["build-failed", "ok"]

    with LocalStore(store_path) as store:
        runs = {
            run.source.branch: run for run in map(store.load, (r.id for r in store.list_runs()))
        }
    good, bad = runs["main"], runs["broken"]
    assert good.status == "ok" and good.source.commit == heads["main"]
    assert [step.name for step in good.build.steps] == ["checkout", "compile"]
    assert all(step.exit_status == 0 and step.seconds >= 0 for step in good.build.steps)
    assert {r.metric for r in good.results} >= {"wall_time"}
    stdout = next(a for a in good.attachments if a.name == "hello.last.stdout.txt")
    assert stdout.data() == b"hello from main\n"
    # The placeholder, not the expanded path, is what the run document keeps.
    assert good.measurements[0].options["command"] == ["{{ build.prefix }}/bin/hello"]

    assert bad.status == "build-failed" and bad.source.commit == heads["broken"]
    assert "compile" in bad.error and bad.build.succeeded is False
    failing = bad.build.steps[-1]
    assert failing.exit_status == 2
    log = next(a for a in bad.attachments if a.name == failing.log_attachment)
    assert b"compiler: error in foo.c" in log.data()
    assert bad.results == [] and bad.measurements[0].status == "skipped"

    only_main = subprocess.run(
        [
            sys.executable,
            "-m",
            "perffarm.commands",
            "run",
            str(suite),
            "--branch",
            "main",
            "--json",
        ],
        env={**os.environ, "PERFFARM_STORE": str(store_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert only_main.returncode == 0, only_main.stderr
    assert [item["status"] for item in json.loads(only_main.stdout)] == ["ok"]

    unknown = subprocess.run(
        [sys.executable, "-m", "perffarm.commands", "run", str(suite), "--branch", "nope"],
        env={**os.environ, "PERFFARM_STORE": str(store_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 2 and "no branch 'nope'" in unknown.stderr
