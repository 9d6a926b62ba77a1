"""A `perffarm run` that dies leaves nothing behind (issue 17, case 7): its measured command
dies with it, and the next run ends whatever still runs of it and removes its temporary
folder. The real CLI in a subprocess, real commands, and `kill -9`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perffarm.agent.store import LocalStore
from tests.support import require

require(Path("/proc/self/environ").exists(), "finds processes through /proc (Linux)")

MARK = "PERFFARM_TEST_ORPHAN_MARK"


def _marked(token: str) -> dict[int, str]:
    """The processes whose environment carries ``token`` (the measured command's), by pid,
    with their command name."""
    wanted = f"{MARK}={token}".encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
            name = Path(entry.path, "comm").read_text().strip()
            state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if wanted in environ.split(b"\0") and state != "Z":
            found[int(entry.name)] = name
    return found


def _group_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])


def _poll(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Wait until ``condition`` holds; a generous deadline only catches a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.05)


@pytest.fixture
def token() -> Iterator[str]:
    """A mark for this test's commands; whatever still carries it at the end is killed."""
    mark = uuid.uuid4().hex
    yield mark
    for pid in _marked(mark):
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _suite(tmp_path: Path, token: str, command: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        "project: orphans\n"
        "measurements:\n"
        "  - name: slow\n"
        "    type: command\n"
        f"    command: {command!r}\n"
        "    repeat: 1\n"
        "    warmup: 0\n"
        f"    env: {{{MARK}: {token}}}\n"
    )
    return path


def _env(tmp_path: Path, store: Path) -> dict[str, str]:
    temporary = tmp_path / "tmp"
    temporary.mkdir(exist_ok=True)
    return {**os.environ, "PERFFARM_STORE": str(store), "TMPDIR": str(temporary)}


def _start(tmp_path: Path, store: Path, suite: Path) -> subprocess.Popen[str]:
    # Output into a file, not a pipe: a process left behind (that a test makes) would hold
    # the pipe open, and reading it to its end would never end.
    output = (tmp_path / "run.out").open("w")
    with output:
        return subprocess.Popen(
            [sys.executable, "-m", "perffarm.commands", "run", str(suite), "--no-progress"],
            env=_env(tmp_path, store),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _run(tmp_path: Path, store: Path, suite: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perffarm.commands", "run", str(suite), "--no-progress"],
        env=_env(tmp_path, store),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _sleeping(token: str) -> Callable[[], bool]:
    return lambda: "sleep" in _marked(token).values()


def _run_folders(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob("perffarm-run-*"))


def test_kill_9_of_perffarm_run_takes_its_command_along_and_the_next_run_cleans_up(
    tmp_path: Path, store_path: Path, token: str
) -> None:
    process = _start(tmp_path, store_path, _suite(tmp_path, token, "sleep 30; echo done"))
    try:
        _poll(_sleeping(token), "the measured command did not start")
    finally:
        process.kill()
        process.wait(timeout=60)
    # The shell and its sleep went with perffarm: nothing of the measurement runs on.
    _poll(lambda: not _marked(token), f"left running: {_marked(token)}")
    (left,) = _run_folders(tmp_path)

    done = _run(tmp_path, store_path, _suite(tmp_path, token, "true", "quick.yaml"))
    assert done.returncode == 0, done.stderr
    assert "removed 1 temporary folder" in done.stderr
    assert not left.exists() and _run_folders(tmp_path) == []
    with LocalStore(store_path) as store:
        assert [row.project for row in store.list_runs()] == ["orphans"]


def test_the_next_run_ends_what_a_dead_run_left_running(
    tmp_path: Path, store_path: Path, token: str
) -> None:
    # The launcher that would end the command with perffarm is stopped first, so the
    # command outlives perffarm: the record in the lock file is what is left to find it.
    from perffarm.agent.children import process_start

    process = _start(tmp_path, store_path, _suite(tmp_path, token, "sleep 30; echo done"))
    launcher = launcher_start = None
    try:
        try:
            _poll(_sleeping(token), "the measured command did not start")
            sleeper = next(pid for pid, name in _marked(token).items() if name == "sleep")
            launcher = _group_of(sleeper)
            launcher_start = process_start(launcher)
            os.kill(launcher, signal.SIGSTOP)
        finally:
            process.kill()
            process.wait(timeout=60)
        assert sleeper in _marked(token), "the orphan this test needs is gone already"

        done = _run(tmp_path, store_path, _suite(tmp_path, token, "true", "quick.yaml"))
        assert done.returncode == 0, done.stderr
        assert f"ended 1 process group ({launcher})" in done.stderr
        assert "removed 1 temporary folder" in done.stderr
        assert not _marked(token) and _run_folders(tmp_path) == []
    finally:
        # The stopped launcher carries no mark: end it here should the test fail.
        if launcher is not None and launcher_start == process_start(launcher):
            os.kill(launcher, signal.SIGKILL)


def test_ctrl_c_of_perffarm_run_ends_the_command_and_stores_the_run(
    tmp_path: Path, store_path: Path, token: str
) -> None:
    # The command has a process group of its own, out of the terminal's reach: perffarm
    # passes the interrupt on.
    process = _start(tmp_path, store_path, _suite(tmp_path, token, "sleep 30; echo done"))
    try:
        _poll(_sleeping(token), "the measured command did not start")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = (tmp_path / "run.out").read_text()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    _poll(lambda: not _marked(token), f"left running: {_marked(token)}")
    assert _run_folders(tmp_path) == []
    with LocalStore(store_path) as store:
        (row,) = store.list_runs()
        assert row.status == "interrupted"


def test_only_what_the_dead_run_recorded_is_ended_or_removed(tmp_path: Path) -> None:
    from perffarm.agent.children import end_leftovers, process_start

    # A group of this test's own, as a command's would be.
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        start = process_start(sleeper.pid)
        assert start is not None
        ours = tmp_path / "perffarm-run-abc"
        other = tmp_path / "precious"
        for folder in (ours, other):
            (folder / "inside").mkdir(parents=True)
        # A recorded pid now naming another process (a different start time) is not ours,
        # and a folder not named like a run's is never removed, whatever the record says.
        found = end_leftovers({"groups": [[sleeper.pid, start + 1]], "folders": [str(other)]})
        assert found.ended == [] and found.removed == [] and sleeper.poll() is None
        assert other.exists()
        found = end_leftovers({"groups": [[sleeper.pid, start]], "folders": [str(ours)]})
        assert found.ended == [sleeper.pid] and found.removed == [str(ours)]
        assert sleeper.wait(timeout=30) == -signal.SIGTERM
        assert not ours.exists() and other.exists()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
