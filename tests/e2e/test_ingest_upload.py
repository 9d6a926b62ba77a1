"""`perffarm ingest --upload`: a tool's results read, stored locally and sent to a real server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from perffarm.commands import main
from tests.server.support import ADMIN, ServerProcess

DATA = Path(__file__).parents[1] / "data" / "adapters"


def test_ingest_stores_then_uploads_to_the_registered_server(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PERFFARM_CONFIG_DIR", str(tmp_path / "creds"))
    store = tmp_path / "store.db"
    sample = next((DATA / "hyperfine").glob("*.json"))
    with ServerProcess(str(tmp_path / "farm.db"), tmp_path) as server:
        assert main(["machine", "register", "lab-01", "--server", server.url]) == 0
        assert (
            main(["machine", "approve", "lab-01", "--server", server.url, "--admin-token", ADMIN])
            == 0
        )
        capsys.readouterr()

        code = main(
            ["ingest", str(sample), "--project", "cli", "--store", str(store), "--upload", "--json"]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        answer = json.loads(out)
        assert answer["upload"]["stored"] == [answer["run_id"]]

        stored = httpx.get(
            f"{server.url}/api/v1/runs/{answer['run_id']}",
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).json()
        assert stored["project"] == "cli" and len(stored["results"]) == len(answer["results"])

    # With the server gone, the ingest still stores locally, then says what failed.
    code = main(["ingest", str(sample), "--store", str(store), "--upload"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert len(json.loads(_runs_json(store, capsys))) == 2, "the second run is kept locally"


def _runs_json(store: Path, capsys) -> str:
    assert main(["runs", "--json", "--store", str(store)]) == 0
    return capsys.readouterr().out
