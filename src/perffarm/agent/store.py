"""The local store: every run is kept here first, so nothing is lost when a server is down.

One SQLite file in WAL mode. A run is written in one transaction when it ends, so a
``kill -9`` at any moment leaves either the whole run or nothing. Migrations are numbered
SQL scripts applied in order and tracked with ``PRAGMA user_version``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

from perffarm.model import RunDocument

STORE_ENV = "PERFFARM_STORE"

_MIGRATIONS: list[str] = [
    # 1: runs and their upload state per server
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        tag TEXT,
        status TEXT NOT NULL,
        machine TEXT NOT NULL,
        branch TEXT,
        commit_sha TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        result_count INTEGER NOT NULL,
        stored_at TEXT NOT NULL,
        document TEXT NOT NULL
    );
    CREATE INDEX runs_started ON runs (started_at);
    CREATE INDEX runs_project ON runs (project, started_at);
    CREATE TABLE uploads (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        server TEXT NOT NULL,
        uploaded_at TEXT NOT NULL,
        PRIMARY KEY (run_id, server)
    );
    """,
]


class StoreError(Exception):
    """The store cannot be opened or written; the message says what to do."""


class RunNotFound(StoreError):
    pass


@dataclass(frozen=True)
class RunRow:
    """The listing columns of a stored run, without its document."""

    id: str
    project: str
    tag: str | None
    status: str
    machine: str
    branch: str | None
    commit: str | None
    started_at: datetime
    finished_at: datetime | None
    result_count: int


def default_store_path() -> Path:
    configured = os.environ.get(STORE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("perffarm")) / "store.db"


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class LocalStore:
    """The agent's SQLite store of runs."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the store {self.path}: {exc} "
                f"(choose another file with --store or {STORE_ENV})"
            ) from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path} is not a usable perffarm store: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > len(_MIGRATIONS):
            raise StoreError(
                f"{self.path} was written by a newer perffarm (store version {version}); "
                "upgrade perffarm to read it"
            )
        for number in range(version, len(_MIGRATIONS)):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(_MIGRATIONS[number]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- writing -------------------------------------------------------------------------

    def save(self, run: RunDocument) -> None:
        """Store a whole run in one transaction; saving the same run again replaces it.

        A run replaced by other content is pending again for every server: what a server
        acknowledged was the old content, and marking the new one uploaded would hide that
        the two differ (the server keeps its copy; the next upload meets its conflict).
        """
        document = run.to_json()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                """
                DELETE FROM uploads WHERE run_id = ? AND EXISTS (
                    SELECT 1 FROM runs WHERE id = ? AND document <> ?)
                """,
                (str(run.id), str(run.id), document),
            )
            self._db.execute(
                """
                INSERT INTO runs (id, project, tag, status, machine, branch, commit_sha,
                                  started_at, finished_at, result_count, stored_at, document)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    project=excluded.project, tag=excluded.tag, status=excluded.status,
                    machine=excluded.machine, branch=excluded.branch,
                    commit_sha=excluded.commit_sha, started_at=excluded.started_at,
                    finished_at=excluded.finished_at, result_count=excluded.result_count,
                    document=excluded.document
                """,
                (
                    str(run.id),
                    run.project,
                    run.tag,
                    run.status.value,
                    run.machine,
                    run.source.branch,
                    run.source.commit,
                    run.started_at.astimezone(UTC).isoformat(),
                    run.finished_at.astimezone(UTC).isoformat() if run.finished_at else None,
                    len(run.results),
                    datetime.now(UTC).isoformat(),
                    document,
                ),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def contains(self, run_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row is not None

    def mark_uploaded(self, run_id: str, server: str) -> None:
        """Record that ``server`` acknowledged the run; call only after its answer."""
        self._db.execute(
            "INSERT OR REPLACE INTO uploads (run_id, server, uploaded_at) VALUES (?, ?, ?)",
            (run_id, _server_key(server), datetime.now(UTC).isoformat()),
        )

    # -- reading -------------------------------------------------------------------------

    def list_runs(self, *, limit: int | None = None, project: str | None = None) -> list[RunRow]:
        sql = (
            "SELECT id, project, tag, status, machine, branch, commit_sha, started_at,"
            " finished_at, result_count FROM runs"
        )
        args: list[object] = []
        if project:
            sql += " WHERE project = ?"
            args.append(project)
        sql += " ORDER BY started_at DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [
            RunRow(
                id=row[0],
                project=row[1],
                tag=row[2],
                status=row[3],
                machine=row[4],
                branch=row[5],
                commit=row[6],
                started_at=_parse_time(row[7]),  # type: ignore[arg-type]
                finished_at=_parse_time(row[8]),
                result_count=row[9],
            )
            for row in self._db.execute(sql, args)
        ]

    def resolve_id(self, prefix: str) -> str:
        """Accept a full run id or an unambiguous prefix of one, as git does for commits."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise RunNotFound("give a run id (see `perffarm runs`)")
        rows = self._db.execute(
            "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
            (prefix, prefix + "\uffff"),
        ).fetchall()
        if not rows:
            raise RunNotFound(f"no stored run has the id {prefix!r} (see `perffarm runs`)")
        if len(rows) > 1:
            raise RunNotFound(f"{prefix!r} matches several runs; give more of the id")
        return rows[0][0]

    def load_json(self, run_id: str) -> str:
        row = self._db.execute("SELECT document FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no stored run has the id {run_id!r} (see `perffarm runs`)")
        return row[0]

    def load(self, run_id: str) -> RunDocument:
        return RunDocument.from_json(self.load_json(run_id))

    def pending_uploads(self, server: str) -> list[str]:
        """Ids of the runs ``server`` has not acknowledged, oldest first."""
        rows = self._db.execute(
            """
            SELECT id FROM runs
            WHERE id NOT IN (SELECT run_id FROM uploads WHERE server = ?)
            ORDER BY started_at
            """,
            (_server_key(server),),
        )
        return [row[0] for row in rows]

    def uploaded_to(self, run_id: str) -> list[str]:
        rows = self._db.execute("SELECT server FROM uploads WHERE run_id = ?", (run_id,))
        return [row[0] for row in rows]

    # -- pruning ---------------------------------------------------------------------------

    def prunable(self, before: datetime | None) -> list[tuple[str, str, bool]]:
        """(id, started_at, acknowledged by some server) of the runs started before
        ``before`` (every run when None), oldest first."""
        query = """
            SELECT id, started_at, EXISTS (SELECT 1 FROM uploads WHERE run_id = runs.id)
            FROM runs {where} ORDER BY started_at, id
        """
        if before is None:
            rows = self._db.execute(query.format(where=""))
        else:
            rows = self._db.execute(
                query.format(where="WHERE started_at < ?"), (before.astimezone(UTC).isoformat(),)
            )
        return [(row[0], row[1], bool(row[2])) for row in rows]

    def delete(self, run_ids: list[str]) -> None:
        """Remove runs (and what was recorded of their uploads) in one transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(run_ids), 500):
                chunk = run_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                self._db.execute(f"DELETE FROM uploads WHERE run_id IN ({marks})", chunk)
                self._db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def size(self) -> int:
        """Bytes of the store's files (the database and its write-ahead log)."""
        return sum(
            path.stat().st_size for path in (self.path, Path(f"{self.path}-wal")) if path.exists()
        )

    def vacuum(self) -> None:
        """Give the space of removed runs back to the file system."""
        self._db.execute("VACUUM")

    def iter_documents(self) -> Iterator[str]:
        for (document,) in self._db.execute("SELECT document FROM runs ORDER BY started_at"):
            yield document

    def integrity_check(self) -> str:
        (answer,) = self._db.execute("PRAGMA integrity_check").fetchone()
        return answer


def _server_key(server: str) -> str:
    """One server is one key whatever trailing slash or case its URL was typed with."""
    return server.strip().rstrip("/").lower()


def _split_sql(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]
