"""`perffarm prune` and the agent's --prune-after/--disk-budget (issue 18): the local store
loses only runs a server has, build directories of gone or idle branches go, and a budget
holds, with real git mirrors and a real store."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from perffarm.agent.build.workspace import BuildWorkspace
from perffarm.agent.store import LocalStore
from perffarm.commands import main
from perffarm.model import RunDocument
from tests.server.support import make_run

SERVER = "http://perf.example.org:8080"


def _run(days: int) -> RunDocument:
    data = make_run(hour=days).model_dump(mode="json", by_alias=True)
    data["started_at"] = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    data["finished_at"] = None
    return RunDocument.model_validate(data)


def _repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}  # fmt: skip
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "commit", "-q", "--allow-empty", "-m", "one"],
        ["git", "branch", "feature"],
    ):
        subprocess.run(command, cwd=repo, check=True, env=env)
    return repo


def _build_dir(workspace: BuildWorkspace, repo: Path, branch: str, days: int, size: int) -> Path:
    directory = workspace.branch_dir(str(repo), branch)
    (directory / "logs").mkdir(parents=True)
    (directory / "install").mkdir()
    (directory / "install" / "postgres").write_bytes(b"\0" * size)
    stamp = time.time() - days * 86400
    for path in (directory / "logs", directory):
        os.utime(path, (stamp, stamp))
    return directory


def test_prune_removes_uploaded_old_runs_and_stale_builds_only(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store_path = tmp_path / "store.db"
    runs = {days: _run(days) for days in (10, 100, 200)}
    with LocalStore(store_path) as store:
        for days, run in runs.items():
            store.save(run)
            if days != 200:
                store.mark_uploaded(str(run.id), SERVER)
    repo = _repository(tmp_path)
    workspace = BuildWorkspace(tmp_path / "work")
    workspace.update(str(repo))
    main_dir = _build_dir(workspace, repo, "main", days=1, size=1000)
    idle = _build_dir(workspace, repo, "feature", days=200, size=1000)
    gone = _build_dir(workspace, repo, "deleted/branch", days=2, size=1000)
    base = ["prune", "--older-than", "90d", "--store", str(store_path),
            "--builds", str(workspace.root), "--json"]  # fmt: skip

    # A dry run says what would go and removes nothing.
    assert main([*base, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["runs_removed"] == 1 and dry["runs_kept_unacknowledged"] == 1
    assert {b["path"] for b in dry["builds_removed"]} == {str(idle), str(gone)}
    assert idle.exists() and gone.exists()

    assert main(base) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["runs_removed"] == 1
    reasons = {b["path"]: b["reason"] for b in done["builds_removed"]}
    assert reasons[str(gone)] == "its branch is gone"
    assert reasons[str(idle)].startswith("not built since")
    assert main_dir.exists() and not idle.exists() and not gone.exists()
    with LocalStore(store_path) as store:
        left = {row[0] for row in store.prunable(None)}
    # The run no server has stays, until forced.
    assert left == {str(runs[10].id), str(runs[200].id)}
    assert main([*base, "--force"]) == 0
    capsys.readouterr()
    with LocalStore(store_path) as store:
        assert {row[0] for row in store.prunable(None)} == {str(runs[10].id)}


def test_a_budget_removes_the_least_recently_built_then_the_oldest_uploaded(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    store_path = tmp_path / "store.db"
    with LocalStore(store_path) as store:
        for days in (1, 2, 3):
            run = _run(days)
            store.save(run)
            store.mark_uploaded(str(run.id), SERVER)
    repo = _repository(tmp_path)
    workspace = BuildWorkspace(tmp_path / "work")
    workspace.update(str(repo))
    older = _build_dir(workspace, repo, "feature", days=5, size=3 * 2**20)
    newer = _build_dir(workspace, repo, "main", days=1, size=3 * 2**20)
    code = main(["prune", "--budget", "4MiB", "--store", str(store_path),
                 "--builds", str(workspace.root), "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and [b["reason"] for b in report["builds_removed"]] == ["over budget"]
    assert not older.exists() and newer.exists()
    assert report["bytes_after"] <= 4 * 2**20


def test_wrong_prune_options_are_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["prune", "--older-than", "soon", "--store", str(tmp_path / "s.db")]) == 2
    assert "not a retention" in capsys.readouterr().err
    assert main(["prune", "--budget", "lots", "--store", str(tmp_path / "s.db")]) == 2
    assert "--budget" in capsys.readouterr().err
    assert main(["agent", str(tmp_path / "x.yaml"), "--prune-after", "0d"]) == 2
    assert "--prune-after" in capsys.readouterr().err
