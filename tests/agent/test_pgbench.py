"""pgbench through perffarm against real private clusters of Debian's PostgreSQL binaries."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

from perffarm.adapters.base import InputSource
from perffarm.adapters.pgbench import PgbenchAdapter
from perffarm.agent.experiment import Experiment, Progress
from perffarm.agent.measurement import MeasurementContext
from perffarm.agent.measurements.pgbench import PgbenchError, PgbenchMeasurement
from perffarm.agent.pgcluster import (
    ClusterError,
    PrivateCluster,
    find_bin_dir,
    reap_stale_clusters,
)
from perffarm.model import Direction, canonical_params
from tests.support import require

try:
    BIN_DIR = find_bin_dir()
except ClusterError:  # pragma: no cover - the farm machines have PostgreSQL
    BIN_DIR = None

require(
    BIN_DIR is not None and (BIN_DIR / "pgbench").exists(),
    "PostgreSQL server binaries and pgbench are not installed",
)


def _processes_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(str(data_dir) in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _measurement(tmp_path: Path, **options) -> PgbenchMeasurement:
    options = {"scale": 1, "duration": 2, "repeat": 1, "warmup": 0, **options}
    return PgbenchMeasurement(
        "oltp",
        PgbenchMeasurement.Options(**options),
        MeasurementContext(suite_dir=tmp_path, work_dir=tmp_path / "work"),
    )


class Seen:
    """What a test saw of the cluster while it ran."""

    data_dir: Path
    base: Path
    pids: list[int]


def _drive(measurement: PgbenchMeasurement, experiment: Experiment, seen: Seen) -> None:
    """The lifecycle as the runner calls it: teardown whatever happens."""
    try:
        measurement.setup(experiment)
        assert measurement.cluster is not None
        seen.data_dir = measurement.cluster.data_dir
        seen.base = measurement.cluster.base  # type: ignore[assignment]
        seen.pids = measurement.cluster.processes()
        measurement.start(experiment)
        measurement.stop(experiment)
        measurement.collect(experiment)
    finally:
        measurement.teardown(experiment)


def _assert_cluster_gone(seen: Seen) -> None:
    assert seen.pids, "the cluster had server processes while it ran"
    assert _wait_gone(seen.pids) == []
    assert _processes_using(seen.data_dir) == []
    assert not seen.data_dir.exists()
    assert not seen.base.exists()


def test_read_write_and_read_only(tmp_path: Path) -> None:
    measurement = _measurement(
        tmp_path, modes=["read-write", "read-only"], settings={"shared_buffers": "32MB"}
    )
    experiment = Experiment("oltp")
    seen = Seen()
    _drive(measurement, experiment, seen)
    _assert_cluster_gone(seen)

    results = experiment.results
    for mode in ("read-write", "read-only"):
        params = {"mode": mode, "clients": 1, "jobs": 1, "scale": 1}
        by_metric = {r.metric: r for r in results if r.params == params}
        assert by_metric["tps"].samples[0] > 0
        assert by_metric["tps"].unit == "1/s" and by_metric["tps"].direction is Direction.HIGHER
        assert 0 < by_metric["latency_average"].samples[0] < 1  # seconds, not ms
        assert by_metric["latency_average"].original_unit == "ms"
        assert by_metric["latency_stddev"].samples[0] >= 0
        assert by_metric["failed_transactions"].samples == [0.0]
        statements = [
            r for r in results if r.metric == "statement_latency" and r.params["mode"] == mode
        ]
        assert any("pgbench_accounts" in str(r.params["statement"]) for r in statements)
        assert all(len(r.samples) == 1 and r.unit == "s" for r in statements)
        series = [
            s
            for s in experiment.series
            if s.name == (f"pgbench.tps{{mode={mode},clients=1,jobs=1,repetition=1}}")
        ]
        assert len(series) == 1 and len(series[0].values) >= 1
        assert all(value > 0 for value in series[0].values)
    assert len([r for r in results if r.metric == "statement_latency"]) == 11 + 2

    environment = experiment.environment["postgresql"]
    assert environment["version"].startswith("PostgreSQL ")
    assert environment["settings"]["shared_buffers"] == "32MB"
    assert "port" not in environment["settings"]
    assert environment["server_version_num"] >= 90600

    (table,) = experiment.tables
    assert [row[0] for row in table.rows] == ["read-write", "read-only"]
    names = [a.name for a in experiment.attachments]
    assert "pgbench-init.log" in names and "postgresql.log" in names
    logs = {a.name: a for a in experiment.attachments}
    run_log = logs["pgbench/read-only-c1-j1-run1.log"]
    assert "tps = " in run_log.data().decode()


def test_failing_custom_script_still_tears_down(tmp_path: Path) -> None:
    (tmp_path / "count.sql").write_text("SELECT count(*) FROM pgbench_branches;\n")
    (tmp_path / "bad.sql").write_text("\\set x random(1,\n")
    measurement = _measurement(tmp_path, modes=["script:count.sql", "script:bad.sql"])
    experiment = Experiment("oltp")
    seen = Seen()
    with pytest.raises(PgbenchError, match=r"script:bad\.sql"):
        _drive(measurement, experiment, seen)
    _assert_cluster_gone(seen)
    # What ran before the failure is kept.
    tps = [r for r in experiment.results if r.metric == "tps"]
    assert [r.params["mode"] for r in tps] == ["script:count.sql"]
    statement = next(r for r in experiment.results if r.metric == "statement_latency")
    assert statement.params["statement"] == "SELECT count(*) FROM pgbench_branches;"
    assert any(a.name.startswith("pgbench/script_bad.sql") for a in experiment.attachments)


def _keys(results: list) -> set[tuple]:
    return {
        (r.benchmark, canonical_params(r.params), r.metric, r.unit, r.direction, r.original_unit)
        for r in results
    }


def test_the_measurement_and_the_adapter_read_one_output_as_the_same_results(
    tmp_path: Path,
) -> None:
    # `perffarm run` (the measurement) and `perffarm ingest` (the adapter) of the same
    # pgbench output must land in the same series: one table says what a run yields.
    script = tmp_path / "count.sql"
    script.write_text(
        "\\set aid random(1, 100000 * :scale)\n"
        "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
    )
    measurement = PgbenchMeasurement(
        "pgbench",  # the adapter's benchmark name; a measurement's results carry its name
        PgbenchMeasurement.Options(
            scale=2,
            clients=[2],
            jobs=[1, 2],
            modes=["read-write", f"script:{script}"],
            protocol="prepared",
            duration=1,
            repeat=1,
            warmup=0,
        ),
        MeasurementContext(suite_dir=tmp_path, work_dir=tmp_path / "work"),
    )
    experiment = Experiment("pgbench")
    _drive(measurement, experiment, Seen())

    assert len(measurement.runs) == 4
    adapter = PgbenchAdapter()
    for run in measurement.runs:
        source = InputSource.from_text(run.output)
        assert adapter.sniff(source)
        ingested = adapter.parse(source).results
        combination = run.combination
        measured = [
            r
            for r in experiment.results
            if (r.params["mode"], r.params["clients"], r.params["jobs"])
            == (combination.mode, combination.clients, combination.jobs)
        ]
        assert _keys(ingested) == _keys(measured)
        assert {r.metric for r in measured} >= {
            "tps",
            "latency_average",
            "latency_stddev",
            "statement_latency",
        }
        assert {r.params["scale"] for r in measured} == {2}
        assert {r.params["protocol"] for r in measured} == {"prepared"}
        for result in ingested:
            twin = next(
                r
                for r in measured
                if (r.metric, canonical_params(r.params))
                == (result.metric, canonical_params(result.params))
            )
            assert twin.samples == result.samples
    modes = {r.params["mode"] for r in experiment.results}
    assert modes == {"read-write", f"script:{script}"}


def test_stop_event_ends_between_repetitions(tmp_path: Path) -> None:
    measurement = _measurement(tmp_path, repeat=3, modes=["read-only"])

    def on_progress(total: int | None, done: int) -> None:
        if done == 1:
            measurement.context.stop_event.set()  # what the runner does on Ctrl-C

    experiment = Experiment("oltp", progress=Progress(on_progress))
    seen = Seen()
    _drive(measurement, experiment, seen)
    _assert_cluster_gone(seen)
    assert experiment.progress.total == 3
    tps = next(r for r in experiment.results if r.metric == "tps")
    assert len(tps.samples) == 1


def test_keyboard_interrupt_during_start_still_tears_down(tmp_path: Path) -> None:
    measurement = _measurement(tmp_path, repeat=2, modes=["read-only"])

    def interrupt(total: int | None, done: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    experiment = Experiment("oltp", progress=Progress(interrupt))
    seen = Seen()
    with pytest.raises(KeyboardInterrupt):
        _drive(measurement, experiment, seen)
    _assert_cluster_gone(seen)
    assert [len(r.samples) for r in experiment.results if r.metric == "tps"] == [1]


def test_cluster_is_removed_when_its_process_gets_sigterm(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from perffarm.agent.pgcluster import PrivateCluster
        cluster = PrivateCluster().start()
        print(cluster.data_dir, cluster.base, *cluster.processes(), flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None
        data_dir, base, *pids = proc.stdout.readline().split()
        assert pids and Path(data_dir).exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_gone([int(pid) for pid in pids]) == []
    assert not Path(base).exists()
    assert _processes_using(Path(data_dir)) == []


def test_private_cluster_is_isolated() -> None:
    with PrivateCluster(settings={"work_mem": "8MB", "jit": False}) as cluster:
        conn = cluster.connection()
        assert conn.host == str(cluster.socket_dir) and conn.port != 5432
        rows = dict(
            cluster.psql(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('listen_addresses', 'data_directory', 'jit')"
            )
        )
        assert rows["listen_addresses"] == ""  # no TCP at all
        assert rows["data_directory"] == str(cluster.data_dir)
        assert rows["jit"] == "off"
        assert cluster.non_default_settings()["work_mem"] == "8MB"
        with pytest.raises(ClusterError, match="chosen by perffarm"):
            PrivateCluster(settings={"port": 5432}).start()
        base = cluster.base
    assert base is not None and not base.exists()


def test_options_are_checked() -> None:
    options = PgbenchMeasurement.Options(clients=4, jobs=[1, 2, 8], modes="read-only")
    assert options.clients == [4] and options.modes == ["read-only"]
    measurement = PgbenchMeasurement(
        "x", options, MeasurementContext(suite_dir=Path("."), work_dir=Path("."))
    )
    # 8 threads for 4 clients would be lowered by pgbench: a duplicate, left out.
    assert [(c.clients, c.jobs) for c in measurement.combinations()] == [(4, 1), (4, 2)]
    with pytest.raises(ValidationError, match="unknown mode 'write-only'"):
        PgbenchMeasurement.Options(modes=["write-only"])
    with pytest.raises(ValidationError, match="scal"):
        PgbenchMeasurement.Options(scal=3)
    with pytest.raises(ValidationError, match="exceeds every clients"):
        PgbenchMeasurement.Options(clients=[1], jobs=[2])
    with pytest.raises(ValidationError, match="at least 1"):
        PgbenchMeasurement.Options(clients=[0])
    with pytest.raises(ValidationError):
        PgbenchMeasurement.Options(protocol="binary")


def test_clusters_of_a_killed_process_are_reaped() -> None:
    # Under /tmp, not pytest's tmp_path: the unprivileged server user must reach it.
    parent = Path(tempfile.mkdtemp(prefix="perffarm-test-reap-"))
    parent.chmod(0o755)
    script = textwrap.dedent(
        f"""
        import time
        from perffarm.agent.pgcluster import PrivateCluster
        cluster = PrivateCluster(base_dir={str(parent)!r}).start()
        print(cluster.data_dir, cluster.base, *cluster.processes(), flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None
        data_dir, base, *pids = proc.stdout.readline().split()
        assert reap_stale_clusters(parent) == []  # its owner is alive
        assert Path(data_dir).exists()
        proc.kill()  # no cleanup can run
        proc.wait(timeout=30)
        assert all(_alive(int(pid)) for pid in pids)  # the server outlived its owner
        assert reap_stale_clusters(parent) == [Path(base)]
        assert _wait_gone([int(pid) for pid in pids]) == []
        assert not Path(base).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(parent, ignore_errors=True)


def test_a_bin_dir_without_postgresql_is_a_clear_error(tmp_path: Path) -> None:
    measurement = _measurement(tmp_path, bin_dir=str(tmp_path / "install" / "bin"))
    experiment = Experiment("oltp")
    try:
        with pytest.raises(ClusterError, match=r"no initdb in .*install/bin"):
            measurement.setup(experiment)
    finally:
        measurement.teardown(experiment)
