"""Which heads the agent has benchmarked: a small SQLite file beside the store
(``<store>.agent.db``), so that an agent restart never measures a head twice."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from perffarm.console import UserError


def state_path_for(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".agent.db")


class BenchmarkedHeads:
    """Which (suite, repository, branch, commit) already have a run in the store."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute(
                """
                CREATE TABLE IF NOT EXISTS benchmarked (
                    suite TEXT NOT NULL,
                    repository TEXT NOT NULL,
                    branch TEXT NOT NULL,
                    commit_sha TEXT NOT NULL,
                    run_id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    at TEXT NOT NULL,
                    PRIMARY KEY (suite, repository, branch, commit_sha)
                )
                """
            )
        except sqlite3.Error as exc:
            raise UserError(
                f"cannot use the agent's state file {self.path}: {exc} (deleting it makes the "
                "agent benchmark the current heads once more)"
            ) from None

    def seen(self, suite: str, repository: str, branch: str, commit: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM benchmarked WHERE suite = ? AND repository = ? AND branch = ? "
            "AND commit_sha = ?",
            (suite, repository, branch, commit),
        ).fetchone()
        return row is not None

    def record(
        self, suite: str, repository: str, branch: str, commit: str, run_id: str, status: str
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO benchmarked VALUES (?, ?, ?, ?, ?, ?, ?)",
            (suite, repository, branch, commit, run_id, status, datetime.now(UTC).isoformat()),
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> BenchmarkedHeads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
