"""`perffarm run` end to end: the real CLI in a subprocess, the real store, real commands.

A third-party measurement (tests/agent/plugin_package, registered through a real entry point)
fails on request in any phase and leaves marker files, so the lifecycle guarantees can be
checked from outside the process.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perffarm.agent.store import LocalStore

PLUGINS = Path(__file__).parent / "plugin_package"
EXAMPLES = Path(__file__).parents[2] / "examples"


def perffarm(*args: str, store: Path, check: bool = False, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "perffarm.commands", *args],
        env=_env(store),
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
        **kwargs,
    )


def _env(store: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PERFFARM_STORE": str(store),
        "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]),
    }


def fragile_suite(tmp_path: Path, **options) -> Path:
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    lines = [
        "project: lifecycle",
        "repeat: 3",
        "sampler: {interval: 0.1}",
        "measurements:",
        "  - name: first",
        "    type: fragile",
        f"    marker_dir: {markers}",
    ]
    lines += [f"    {key}: {value}" for key, value in options.items()]
    lines += [
        "  - name: second",
        "    type: command",
        "    command: 'true'",
    ]
    path = tmp_path / "suite.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_example_suite_stores_a_full_run_and_prints_its_table(tmp_path, store_path):
    done = perffarm("run", str(EXAMPLES / "suite.yaml"), "--repeat", "5", store=store_path)
    assert done.returncode == 0, done.stderr
    assert "median" in done.stdout and "sort_time" in done.stdout

    with LocalStore(store_path) as store:
        (row,) = store.list_runs()
        run = store.load(row.id)
    assert run.status == "ok"
    assert len(run.results) >= 3
    for result in run.results:
        assert len(result.samples) == 5
        assert result.summary.n == 5 and result.summary.median is not None
        assert result.summary.mean_ci is not None
    wall = next(r for r in run.results if r.benchmark == "sort-numbers" and r.metric == "wall_time")
    assert all(0 < sample < 10 for sample in wall.samples)
    assert {"cpu", "memory", "os", "python", "disk"} <= set(run.environment.sections)
    assert run.environment.fingerprint and run.environment.fingerprint_keys
    assert {series.name for series in run.series} >= {"cpu.percent", "memory.used"}
    assert run.tables and run.agent.version

    exported = perffarm("export", row.id[:8], store=store_path, check=True).stdout
    other_store = tmp_path / "other.db"
    (tmp_path / "run.json").write_text(exported)
    imported = perffarm("import", str(tmp_path / "run.json"), store=other_store, check=True)
    assert "imported" in imported.stdout
    again = perffarm("export", row.id, store=other_store, check=True).stdout
    assert again == exported, "export -> import -> export must round-trip exactly"
    assert (
        "already stored" in perffarm("import", str(tmp_path / "run.json"), store=other_store).stdout
    )


def test_json_output_is_machine_readable(store_path):
    done = perffarm(
        "run",
        str(EXAMPLES / "suite.yaml"),
        "--repeat",
        "2",
        "--tag",
        "ci",
        "--json",
        store=store_path,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == "ok" and answer["tag"] == "ci"
    assert {item["metric"] for item in answer["results"]} >= {"wall_time", "time", "sort_time"}
    listed = json.loads(perffarm("runs", "--json", store=store_path, check=True).stdout)
    assert [item["id"] for item in listed] == [answer["id"]]


@pytest.mark.parametrize("phase", ["setup", "start", "collect"])
def test_a_measurement_that_raises_gives_a_failed_run_after_teardown(tmp_path, store_path, phase):
    suite = fragile_suite(tmp_path, fail_in=phase)
    done = perffarm("run", str(suite), store=store_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert (tmp_path / "markers" / "first.teardown").exists(), "teardown must run"
    with LocalStore(store_path) as store:
        (row,) = store.list_runs()
        run = store.load(row.id)
    assert run.status == "failed"
    assert f"{phase} broke on purpose" in run.error
    first, second = run.measurements
    assert first.status == "failed" and f"{phase} failed" in first.error
    assert second.status == "ok", "the next measurement still runs"
    if phase == "collect":
        # What collect recorded before raising is kept.
        assert any(r.metric == "step_time" for r in run.results)
        assert any(a.name == "collected.txt" for a in run.attachments)


def test_ctrl_c_stops_tears_down_and_saves_an_interrupted_run(tmp_path, store_path):
    suite = fragile_suite(tmp_path, steps=200, step_seconds=0.05)
    process = subprocess.Popen(
        [sys.executable, "-m", "perffarm.commands", "run", str(suite)],
        env=_env(store_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(tmp_path / "markers" / "first.step3")
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert (tmp_path / "markers" / "first.teardown").exists()
    with LocalStore(store_path) as store:
        (row,) = store.list_runs()
        run = store.load(row.id)
    assert run.status == "interrupted"
    first, second = run.measurements
    assert first.status == "interrupted" and second.status == "skipped"
    (result,) = run.results
    assert 4 <= len(result.samples) < 200, "what was measured before Ctrl-C is kept"


def test_kill_9_mid_run_leaves_a_readable_store_without_a_broken_run(tmp_path, store_path):
    perffarm("run", str(fragile_suite(tmp_path)), store=store_path, check=True)
    suite = fragile_suite(tmp_path, steps=500, step_seconds=0.02)
    process = subprocess.Popen(
        [sys.executable, "-m", "perffarm.commands", "run", str(suite)],
        env=_env(store_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(tmp_path / "markers" / "first.step5")
    process.kill()
    process.wait(timeout=30)

    listed = perffarm("runs", "--json", store=store_path)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [item["status"] for item in runs] == ["ok"], "only the finished run is stored"
    with sqlite3.connect(store_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_secret_from_secure_yaml_is_nowhere_in_store_export_or_output(tmp_path, store_path):
    secret = "tok-8f3a9c2e71d4b605"
    (tmp_path / "secure.yaml").write_text(f"api_token: {secret}\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "project: secrets\n"
        "repeat: 2\n"
        "measurements:\n"
        "  - name: leaky\n"
        "    type: command\n"
        "    command: 'echo token=$API_TOKEN; echo $API_TOKEN >&2; test -n \"$API_TOKEN\"'\n"
        "    env:\n"
        "      API_TOKEN: '{{ secure.api_token }}'\n"
        "    metrics:\n"
        "      - name: token_length\n"
        "        regex: 'token=(\\S+)'\n"
        "  - name: failing\n"
        "    type: command\n"
        "    command: 'echo {{ secure.api_token }}; exit 3'\n"
    )
    done = perffarm("run", str(suite), store=store_path)
    assert done.returncode == 1
    assert secret not in done.stdout + done.stderr
    exported = perffarm(
        "export",
        perffarm("runs", "--json", store=store_path).stdout.split('"')[3],
        store=store_path,
        check=True,
    ).stdout
    assert secret not in exported
    assert "***" in exported  # the echoed secret was replaced, not dropped silently
    for path in store_path.parent.glob(store_path.name + "*"):
        assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("port", [22, 2])
def test_a_spice_style_secure_yaml_keeps_every_run(tmp_path, store_path, port):
    """Issue 16, case 8: every scalar of this secure.yaml was a secret, replaced in
    timestamps too (``port: 22`` lost 4 runs of 6, ``port: 2`` every run) and in the
    loopback address; only the password is a secret, and only free text is scrubbed."""
    (tmp_path / "secure.yaml").write_text(
        "databases:\n"
        f"  remote: {{host: 127.0.0.1, port: {port}, user: spice, password: s3cr3t-Pass}}\n"
    )
    user, host, port_, password = (
        f"{{{{ secure.databases.remote.{key} }}}}" for key in ("user", "host", "port", "password")
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "project: spice\n"
        "repeat: 2\n"
        "warmup: 0\n"
        "sampler: {enabled: false}\n"
        "measurements:\n"
        "  - name: connect\n"
        "    type: command\n"
        f"    command: 'echo {user}@{host}:{port_} {password}; echo took 2{port} ms'\n"
        "    metrics:\n"
        "      - {name: took, regex: 'took (\\d+) ms', unit: ms}\n"
    )
    for _ in range(3):
        done = perffarm("run", str(suite), store=store_path)
        assert done.returncode == 0, done.stderr
    with LocalStore(store_path) as store:
        runs = [store.load(row.id) for row in store.list_runs()]
    assert len(runs) == 3
    for run in runs:
        assert run.status == "ok" and run.error is None
        assert run.started_at.year >= 2026 and run.finished_at is not None
        took = next(result for result in run.results if result.metric == "took")
        assert took.samples == [float(f"2{port}")] * 2
        stdout = next(a for a in run.attachments if a.name == "connect.last.stdout.txt")
        assert stdout.data().decode() == f"spice@127.0.0.1:{port} ***\ntook 2{port} ms\n"
        assert "s3cr3t-Pass" not in run.to_json()


def test_a_run_that_does_not_validate_once_scrubbed_is_stored_with_a_note(tmp_path, store_path):
    # A plug-in spoils its result after the API checked it (a NaN sample): the run is kept
    # with everything else it measured, and says what was left out.
    (tmp_path / "secure.yaml").write_text("token: s3cr3t-value\n")
    suite = fragile_suite(tmp_path, break_result="true")
    done = perffarm("run", str(suite), store=store_path)
    assert done.returncode == 0, done.stderr
    with LocalStore(store_path) as store:
        (row,) = store.list_runs()
        run = store.load(row.id)
    assert run.status == "ok"
    assert run.error is not None
    assert run.error.startswith("left out before storing, as it did not validate: ")
    assert "samples must be finite numbers" in run.error
    assert {result.measurement for result in run.results} == {"first", "second"}
    assert next(r for r in run.results if r.measurement == "first").samples == []
    wall = next(r for r in run.results if r.measurement == "second" and r.metric == "wall_time")
    assert len(wall.samples) == 3
    assert [record.status for record in run.measurements] == ["ok", "ok"]


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.02)


def test_a_second_run_on_the_same_store_refuses_while_one_measures(tmp_path, store_path):
    from perffarm.agent.lock import LOCK_FILE_NAME, AgentLock

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "project: p\nmeasurements:\n  - name: t\n    type: command\n    command: 'true'\n"
    )
    store_path.parent.mkdir(parents=True, exist_ok=True)
    with AgentLock(store_path.parent / LOCK_FILE_NAME):
        refused = perffarm("run", str(suite), store=store_path)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert f"pid {os.getpid()}" in refused.stderr and "stop it first" in refused.stderr
    assert "Traceback" not in refused.stderr
    with LocalStore(store_path) as store:
        assert store.list_runs() == []

    done = perffarm("run", str(suite), store=store_path)
    assert done.returncode == 0, done.stderr
