"""One pgbench output, measured by `perffarm run` and read by `perffarm ingest`, lands in the
same series: the real commands, a real private PostgreSQL cluster, one table of metrics."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from perffarm.agent.pgcluster import ClusterError, find_bin_dir
from perffarm.model import canonical_params
from tests.support import require

try:
    BIN_DIR = find_bin_dir()
except ClusterError:  # pragma: no cover - the farm machines have PostgreSQL
    BIN_DIR = None

require(
    BIN_DIR is not None and (BIN_DIR / "pgbench").exists(),
    "PostgreSQL server binaries and pgbench are not installed",
)


def perffarm(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    answer = subprocess.run(
        [sys.executable, "-m", "perffarm.commands", *args, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert answer.returncode == 0, answer.stderr
    return answer


def _keys(document: dict) -> set[tuple[str, str, str, str, str]]:
    return {
        (r["benchmark"], canonical_params(r["params"]), r["metric"], r["unit"], r["direction"])
        for r in document["results"]
    }


def test_run_and_ingest_of_one_output_land_in_the_same_series(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "project: pg\n"
        "measurements:\n"
        "  - name: oltp\n"
        "    type: pgbench\n"
        "    scale: 1\n"
        "    clients: [2]\n"
        "    modes: [read-only]\n"
        "    duration: 1\n"
        "    repeat: 1\n"
        "    warmup: 0\n"
    )
    perffarm("run", str(suite), store=store)
    (measured_run,) = json.loads(perffarm("runs", "--json", store=store).stdout)
    measured = json.loads(perffarm("export", measured_run["id"], store=store).stdout)
    (log,) = [a for a in measured["attachments"] if a["name"].startswith("pgbench/read-only")]
    output = tmp_path / "pgbench.log"
    output.write_bytes(base64.b64decode(log["content"]))

    stored = perffarm(
        "ingest",
        str(output),
        "--format",
        "pgbench",
        "--project",
        "pg",
        "--benchmark",
        "oltp",
        "--json",
        store=store,
    )
    ingested = json.loads(
        perffarm("export", json.loads(stored.stdout)["run_id"], store=store).stdout
    )

    assert _keys(ingested) == _keys(measured)
    assert {r["metric"] for r in ingested["results"]} >= {"tps", "latency_average"}
    samples = {
        (r["metric"], canonical_params(r["params"])): r["samples"] for r in measured["results"]
    }
    for result in ingested["results"]:
        assert result["samples"] == samples[(result["metric"], canonical_params(result["params"]))]
