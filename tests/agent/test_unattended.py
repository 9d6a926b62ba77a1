"""`perffarm agent`: new heads of tracked branches benchmarked once, one agent per machine,
a clean stop on SIGTERM. Real git repositories, real subprocesses, real signals."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from perffarm.agent.lock import AgentLock, LockHeld
from perffarm.agent.store import LocalStore
from perffarm.agent.unattended import configure_logging, parse_every, set_secrets
from perffarm.agent.upload import Credentials, save_credentials
from tests.agent.test_farm_run import git


def perffarm(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "perffarm.commands", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_perffarm(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "perffarm.commands", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def farm(tmp_path: Path) -> dict:
    """A bare upstream with one branch, a working clone to push from, and a suite tracking it."""
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "build.sh").write_text('#!/bin/sh\nmkdir -p "$1"\ngit rev-parse HEAD > "$1/commit"\n')
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    upstream = tmp_path / "upstream.git"
    git("clone", "-q", "--bare", str(work), str(upstream), cwd=tmp_path)
    git("remote", "add", "origin", str(upstream), cwd=work)
    suite = tmp_path / "farm.yaml"
    suite.write_text(
        "project: farm\n"
        "machine: lab-01\n"
        "repeat: 1\n"
        "warmup: 0\n"
        "sampler: {enabled: false}\n"
        "build:\n"
        "  repository: upstream.git\n"
        "  branches: [main]\n"
        f"  work_dir: {tmp_path / 'builds'}\n"
        "  steps:\n"
        "    - name: compile\n"
        "      run: sh build.sh {{ build.prefix }}\n"
        "measurements:\n"
        "  - name: read-commit\n"
        "    type: command\n"
        "    command: cat {{ build.prefix }}/commit\n"
    )
    store = tmp_path / "store.db"
    env = {
        **os.environ,
        "PERFFARM_STORE": str(store),
        "PERFFARM_CONFIG_DIR": str(tmp_path / "no-creds"),
    }
    return {"work": work, "suite": suite, "store": store, "env": env, "log": tmp_path / "a.log"}


def stored_runs(store: Path) -> list:
    with LocalStore(store) as local:
        return [local.load(row.id) for row in local.list_runs()]


def push_commit(work: Path, message: str) -> str:
    (work / "NEWS").write_text(message + "\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def test_each_new_head_is_benchmarked_once(farm):
    args = ("agent", str(farm["suite"]), "--once", "--log-file", str(farm["log"]))
    first = perffarm(*args, env=farm["env"])
    assert first.returncode == 0, first.stderr
    head = git("rev-parse", "HEAD", cwd=farm["work"])
    runs = stored_runs(farm["store"])
    assert [(r.source.branch, r.source.commit, r.status) for r in runs] == [("main", head, "ok")]

    again = perffarm(*args, env=farm["env"])
    assert again.returncode == 0, again.stderr
    assert len(stored_runs(farm["store"])) == 1
    assert "nothing new" in again.stderr

    new_head = push_commit(farm["work"], "second")
    third = perffarm(*args, env=farm["env"])
    assert third.returncode == 0, third.stderr
    runs = stored_runs(farm["store"])
    assert sorted(r.source.commit for r in runs) == sorted([head, new_head])
    newest = next(r for r in runs if r.source.commit == new_head)
    # The build really was of the new commit: the measured command printed it.
    stdout = next(a for a in newest.attachments if a.name == "read-commit.last.stdout.txt")
    assert stdout.data().decode().strip() == new_head

    log = farm["log"].read_text()
    assert f"run {newest.id} ok" in log
    assert "round 1 started" in log and "not uploading" in log


def test_a_failed_build_counts_as_benchmarked_and_once_exits_1(farm):
    (farm["work"] / "build.sh").write_text("#!/bin/sh\necho 'cc: error' >&2\nexit 3\n")
    push_commit(farm["work"], "break the build")
    args = ("agent", str(farm["suite"]), "--once", "--log-file", str(farm["log"]), "--quiet")
    first = perffarm(*args, env=farm["env"])
    assert first.returncode == 1
    assert [r.status for r in stored_runs(farm["store"])] == ["build-failed"]
    second = perffarm(*args, env=farm["env"])
    assert second.returncode == 0, second.stderr
    assert len(stored_runs(farm["store"])) == 1


def test_a_suite_without_build_runs_every_round(tmp_path):
    suite = tmp_path / "system.yaml"
    suite.write_text(
        "project: sys\nrepeat: 1\nwarmup: 0\nsampler: {enabled: false}\n"
        "measurements:\n  - {name: noop, type: command, command: 'true'}\n"
    )
    env = {**os.environ, "PERFFARM_STORE": str(tmp_path / "s.db")}
    for _ in range(2):
        done = perffarm(
            "agent", str(suite), "--once", "--quiet", "--log-file", str(tmp_path / "l"), env=env
        )
        assert done.returncode == 0, done.stderr
    assert [r.status for r in stored_runs(tmp_path / "s.db")] == ["ok", "ok"]


def test_secrets_never_reach_the_log(tmp_path):
    (tmp_path / "secure.yaml").write_text("token: s3cr3t-value\n")
    suite = tmp_path / "leaky.yaml"
    suite.write_text(
        "project: sys\nrepeat: 1\nwarmup: 0\nsampler: {enabled: false}\n"
        "measurements:\n"
        "  - {name: leak, type: command, command: 'echo {{ secure.token }}; exit 4'}\n"
    )
    log = tmp_path / "agent.log"
    env = {**os.environ, "PERFFARM_STORE": str(tmp_path / "s.db")}
    done = perffarm("agent", str(suite), "--once", "--log-file", str(log), env=env)
    assert done.returncode == 1
    text = log.read_text()
    assert "leak: start failed" in text
    assert "s3cr3t-value" not in text and "s3cr3t-value" not in done.stderr


def test_the_log_filter_scrubs_secrets_from_messages_and_tracebacks(tmp_path):
    log_file = tmp_path / "agent.log"
    logger = configure_logging(log_file, echo=False)
    set_secrets(logger, ["hunter2"])
    logger.info("connecting with %s", "password=hunter2")
    try:
        raise RuntimeError("login hunter2 refused")
    except RuntimeError:
        logger.exception("unexpected error")
    for handler in logger.handlers:
        handler.flush()
    text = log_file.read_text()
    assert "hunter2" not in text
    assert "password=***" in text and "login *** refused" in text
    assert "RuntimeError: login" in text


def test_a_second_agent_is_refused_until_the_first_is_killed(farm):
    holder = start_perffarm(
        "agent", str(farm["suite"]), "--every", "1h", "--log-file", str(farm["log"]),
        env=farm["env"],
    )  # fmt: skip
    try:
        _wait_for(lambda: "next round at" in _read(farm["log"]), holder)
        refused = perffarm("agent", str(farm["suite"]), "--once", env=farm["env"])
        assert refused.returncode == 1
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert f"another perffarm agent (pid {holder.pid}, since " in lines[0]
        assert "is running" in lines[0]
    finally:
        holder.kill()  # SIGKILL: no chance to release anything
        holder.communicate(timeout=10)
    taken = perffarm(
        "agent", str(farm["suite"]), "--once", "--log-file", str(farm["log"]), env=farm["env"]
    )
    assert taken.returncode == 0, taken.stderr


def test_sigterm_during_the_sleep_stops_at_once(farm):
    agent = start_perffarm(
        "agent", str(farm["suite"]), "--every", "1h", "--log-file", str(farm["log"]),
        env=farm["env"],
    )  # fmt: skip
    try:
        _wait_for(lambda: "next round at" in _read(farm["log"]), agent)
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=20)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
    assert agent.returncode == 0
    assert "agent stopped (SIGTERM)" in _read(farm["log"])
    assert len(stored_runs(farm["store"])) == 1


def test_new_runs_are_uploaded_and_the_suite_branches_used_when_the_server_has_none(farm, tmp_path):
    from perffarm.commands import main
    from tests.server.support import ADMIN, ServerProcess

    creds = tmp_path / "creds"
    with ServerProcess(str(tmp_path / "server.db"), tmp_path) as server:
        register = ["machine", "register", "lab-01", "--server", server.url]
        assert main([*register, "--creds-dir", str(creds), "--owner", "me"]) == 0
        assert main(["machine", "approve", "lab-01", "--server", server.url,
                     "--admin-token", ADMIN]) == 0  # fmt: skip
        env = {**farm["env"], "PERFFARM_CONFIG_DIR": str(creds)}
        args = ("agent", str(farm["suite"]), "--once", "--no-probe", "--log-file", str(farm["log"]))
        done = perffarm(*args, env=env)
        assert done.returncode == 0, done.stderr
        (run,) = stored_runs(farm["store"])
        with LocalStore(farm["store"]) as local:
            assert local.pending_uploads(server.url) == []
        response = httpx.get(f"{server.url}/api/v1/runs/{run.id}", headers={
            "Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        assert response.status_code == 200
    log = farm["log"].read_text()
    assert f"uploaded to {server.url}: 1 stored" in log
    # The server does not publish branches of interest (404): the suite's list is used.
    assert run.source.branch == "main"


class _BranchesHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/api/v1/projects/farm/branches":
            body = json.dumps({"branches": ["feature/*", "gone"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        elif self.path == "/api/v1/health":
            # perffarm's client reads the API version a server states before asking it.
            health = {"api_version": 1, "server_version": "stand-in", "database": "none"}
            body = json.dumps(health).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_the_servers_branches_of_interest_win_over_the_suites(farm, tmp_path):
    git("checkout", "-q", "-b", "feature/x", cwd=farm["work"])
    (farm["work"] / "x").write_text("x\n")
    git("add", ".", cwd=farm["work"])
    git("commit", "-q", "-m", "feature", cwd=farm["work"])
    git("push", "-q", "origin", "feature/x", cwd=farm["work"])
    feature = git("rev-parse", "HEAD", cwd=farm["work"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BranchesHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        env = {**farm["env"], "PERFFARM_CONFIG_DIR": str(tmp_path / "creds")}
        save_credentials(tmp_path / "creds", Credentials(server=url, machine="m", secret="s"))
        done = perffarm("agent", str(farm["suite"]), "--once", "--log-file", str(farm["log"]),
                        env=env)  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    runs = stored_runs(farm["store"])
    assert [(r.source.branch, r.source.commit) for r in runs] == [("feature/x", feature)]
    log = farm["log"].read_text()
    assert "the server asks for branch 'gone'" in log
    # This stand-in server has no upload API: the upload fails in one line, the run stays.
    assert done.returncode == 1
    assert "upload to" in log and "failed" in log


def test_sigterm_during_a_run_saves_it_interrupted_and_starts_no_other(farm, tmp_path):
    git("branch", "second", cwd=farm["work"])
    git("push", "-q", "origin", "second", cwd=farm["work"])
    fast = tmp_path / "fast"
    text = farm["suite"].read_text()
    text = text.replace("branches: [main]", "branches: [main, second]")
    text = text.replace(
        "command: cat {{ build.prefix }}/commit", f"command: test -e {fast} || sleep 2"
    )
    farm["suite"].write_text(text)
    args = ("agent", str(farm["suite"]), "--every", "1h", "--log-file", str(farm["log"]))
    agent = start_perffarm(*args, env=farm["env"])
    try:
        _wait_for(lambda: "main@" in _read(farm["log"]), agent)
        time.sleep(0.3)  # into the build or the measurement: both must end the same way
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
    assert agent.returncode == 0
    runs = stored_runs(farm["store"])
    assert [(r.source.branch, r.status) for r in runs] == [("main", "interrupted")]
    assert "upload skipped" in _read(farm["log"])

    # An interrupted head was not benchmarked: the next round measures it (and the other).
    fast.touch()
    again = perffarm("agent", str(farm["suite"]), "--once", "--quiet", env=farm["env"])
    assert again.returncode == 0, again.stderr
    done = sorted((r.source.branch, r.status) for r in stored_runs(farm["store"]))
    assert done == [("main", "interrupted"), ("main", "ok"), ("second", "ok")]


def test_bad_interval_is_a_usage_error(farm):
    done = perffarm("agent", str(farm["suite"]), "--every", "soon", env=farm["env"])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "e.g. 30s, 10m, 1h or 1d" in done.stderr


def test_parse_every():
    assert [parse_every(t) for t in ("30s", "10m", "1h", "1d", "1.5h")] == [
        30,
        600,
        3600,
        86400,
        5400,
    ]
    for bad in ("", "1", "h", "0s", "-1m", "1w"):
        with pytest.raises(ValueError):
            parse_every(bad)


def test_lock_in_process(tmp_path):
    path = tmp_path / "agent.lock"
    with AgentLock(path):
        info = json.loads(path.read_text())
        assert info["pid"] == os.getpid()
        with pytest.raises(LockHeld, match=rf"pid {os.getpid()}, since "):
            AgentLock(path).acquire()
    with AgentLock(path) as again:
        assert again.held


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _wait_for(condition, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"agent exited with {process.returncode}: {err}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the agent")


def test_the_loop_picks_up_a_commit_pushed_during_the_sleep(farm, tmp_path):
    from perffarm.agent.config import load_suite
    from perffarm.agent.unattended import Agent, AgentOptions, BenchmarkedHeads, state_path_for

    pushed: list[str] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:
            pushed.append(push_commit(farm["work"], "during the sleep"))
        else:
            agent.request_stop("test")

    logger = configure_logging(farm["log"], echo=False)
    options = AgentOptions(suite_files=[farm["suite"]], every=3600.0, creds_dir=tmp_path / "none")
    with (
        LocalStore(farm["store"]) as store,
        BenchmarkedHeads(state_path_for(farm["store"])) as state,
    ):
        agent = Agent(options, [load_suite(farm["suite"])], store, state, logger, sleep=sleep)
        assert agent.serve() == 0
    assert len(sleeps) == 2 and all(0 < s <= 3600 for s in sleeps)
    runs = stored_runs(farm["store"])
    assert len(runs) == 2 and pushed[0] in {r.source.commit for r in runs}
    log = farm["log"].read_text()
    assert "round 2 started" in log and "agent stopped (test)" in log


def test_the_agent_prunes_after_its_round(farm):
    # A branch built long ago and since deleted upstream leaves a build directory behind;
    # an old run that a server acknowledged sits in the store. One round with pruning on
    # removes both, and keeps the run it has just made (no server has it yet).
    from datetime import UTC, datetime, timedelta

    from tests.agent.test_prune import _run

    gone = farm["suite"].parent / "builds" / "builds"
    with LocalStore(farm["store"]) as local:
        old = _run(200)
        local.save(old)
        local.mark_uploaded(str(old.id), "http://perf.example.org")
    args = ("agent", str(farm["suite"]), "--once", "--log-file", str(farm["log"]))
    assert perffarm(*args, env=farm["env"]).returncode == 0
    repository_dirs = list(gone.iterdir())
    stale = repository_dirs[0] / "removed-branch"
    (stale / "logs").mkdir(parents=True)
    pruned = perffarm(*args, "--prune-after", "90d", "--disk-budget", "1GiB", env=farm["env"])
    assert pruned.returncode == 0, pruned.stderr
    assert not stale.exists() and (repository_dirs[0] / "main").exists()
    runs = stored_runs(farm["store"])
    assert old.id not in {run.id for run in runs} and len(runs) == 1
    assert "pruned 1 runs and 1 build directories" in farm["log"].read_text()
    assert datetime.now(UTC) - runs[0].started_at < timedelta(hours=1)
