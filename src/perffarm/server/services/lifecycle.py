"""Data over years: the retention policy applied in small batches (by the server every
day, or by `perffarm db prune`), deletions with their permissions and audit trail, and
what the database holds.

A run past the policy keeps its summaries: its document loses its samples, warm-up samples,
time series and attachments, each result gets the full summary of the samples it had, and
the result rows keep their summary columns, so the run stays on every chart and comparison.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perffarm.analysis.statistics import summarize
from perffarm.model.lifecycle import PruneReport, RetentionPolicy, Usage
from perffarm.server import permissions
from perffarm.server.core.errors import NotFound
from perffarm.server.core.principal import Principal
from perffarm.server.core.timeutil import now
from perffarm.server.store import lifecycle as store
from perffarm.server.store import machines

log = logging.getLogger("perffarm.retention")

BATCH = 100
#: The daily worker's rest after each batch, relative to the batch's time.
WORKER_PAUSE = 1.0
# One retention pass at a time across server processes on one PostgreSQL database.
_ADVISORY_KEY = 7316018
Progress = Callable[[str, int], None]


def summary_only(document: str) -> tuple[str, int, int]:
    """The document reduced to its summaries, and how many samples (of its results) and
    attachments went; warm-up samples and time series go too."""
    parsed: dict[str, Any] = orjson.loads(document)
    samples = 0
    for result in parsed.get("results") or []:
        raw = result.get("samples") or []
        samples += len(raw)
        if raw and not result.get("summary"):
            result["summary"] = summarize(raw).model_dump(mode="json", exclude_none=True)
        result["samples"] = []
        result["warmup_samples"] = []
    attachments = len(parsed.get("attachments") or [])
    parsed["attachments"] = []
    parsed["series"] = []
    return orjson.dumps(parsed).decode(), samples, attachments


class Retention:
    """The policy applied to one database."""

    def __init__(
        self, engine: Engine, policy: RetentionPolicy, *, batch: int = BATCH, pause: float = 0.0
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.batch = batch
        #: After each batch, rest this many times as long as the batch took: the server's
        #: own worker leaves ingest most of the database (a command may go flat out).
        self.pause = pause

    def prune(
        self,
        *,
        dry_run: bool = False,
        at: datetime | None = None,
        actor: str = "retention policy",
        progress: Progress | None = None,
    ) -> PruneReport:
        """Apply the policy now (``dry_run``: count what it would remove). Each batch is a
        transaction of its own, so ingest goes on between them."""
        at = at or now()
        report = PruneReport(dry_run=dry_run)
        samples_before = self.policy.samples_cutoff(at)
        if samples_before is not None:
            self._reduce_runs(samples_before, at, report, progress)
        datapoints_before = self.policy.datapoints_cutoff(at)
        if datapoints_before is not None:
            self._remove_datapoints(int(datapoints_before.timestamp() * 1000), report, progress)
        with self.engine.begin() as conn:
            gone = store.expired(conn, at, remove=not dry_run)
            report.device_codes_removed = gone.device_codes
            report.sessions_removed = gone.sessions
            report.sign_ins_removed = gone.sign_ins
            report.tokens_removed = gone.tokens
            report.rate_events_removed = gone.rate_events
            if not dry_run and report.removed_anything():
                store.record(
                    conn,
                    actor=actor,
                    action="prune",
                    target=f"samples {self.policy.keep_samples}, "
                    f"datapoints {self.policy.keep_datapoints}",
                    detail=describe(report),
                    at=at,
                )
        return report

    def _reduce_runs(
        self, before: datetime, at: datetime, report: PruneReport, progress: Progress | None
    ) -> None:
        if report.dry_run:
            with self.engine.connect() as conn:
                runs, samples, attachments = store.reducible_totals(conn, before)
            report.runs_reduced, report.samples_removed = runs, samples
            report.attachments_removed = attachments
            return
        while True:
            started = time.monotonic()
            with self.engine.connect() as conn:
                found = store.reducible_runs(conn, before, limit=self.batch)
            # The documents are reduced outside the write transaction, which then only
            # writes: ingest waits for two statements per batch, not for the JSON work.
            reduced = []
            for run_id, document in found:
                text, samples, attachments = summary_only(document)
                reduced.append((run_id, text))
                report.runs_reduced += 1
                report.samples_removed += samples
                report.attachments_removed += attachments
            with self.engine.begin() as conn:
                store.reduce_runs(conn, reduced, at=at)
            if self.pause and found:
                time.sleep((time.monotonic() - started) * self.pause)
            if progress is not None and found:
                progress("runs", len(found))
            if len(found) < self.batch:
                return

    def _remove_datapoints(
        self, finished_before_ms: int, report: PruneReport, progress: Progress | None
    ) -> None:
        if report.dry_run:
            with self.engine.connect() as conn:
                tests = store.loadtests_with_old_datapoints(conn, finished_before_ms, None)
                report.loadtests_reduced = len(tests)
                report.datapoints_removed = store.datapoints_of(conn, tests) if tests else 0
            return
        while True:
            with self.engine.connect() as conn:
                tests = store.loadtests_with_old_datapoints(conn, finished_before_ms, self.batch)
            for test_id in tests:
                started = time.monotonic()
                with self.engine.begin() as conn:
                    report.datapoints_removed += store.remove_datapoints(conn, test_id)
                report.loadtests_reduced += 1
                if self.pause:
                    time.sleep((time.monotonic() - started) * self.pause)
                if progress is not None:
                    progress("load tests", 1)
            if len(tests) < self.batch:
                return

    def usage(self) -> Usage:
        with self.engine.connect() as conn:
            tables, total = store.table_usage(conn)
            projects = store.group_usage(conn, "project")
            machines_held = store.group_usage(conn, "machine")
        return Usage(
            database_bytes=total,
            tables=tables,
            projects=projects,
            machines=machines_held,
            policy=self.policy,
            would_remove=self.prune(dry_run=True),
        )


def describe(report: PruneReport) -> str:
    """One line of what a prune removed."""
    parts = []
    if report.runs_reduced:
        parts.append(
            f"{report.runs_reduced} runs reduced to their summaries ({report.samples_removed} "
            f"samples, {report.attachments_removed} attachments)"
        )
    if report.loadtests_reduced:
        parts.append(
            f"{report.datapoints_removed} datapoints of {report.loadtests_reduced} load tests"
        )
    expired = {
        "device codes": report.device_codes_removed,
        "sessions": report.sessions_removed,
        "sign-in states": report.sign_ins_removed,
        "tokens": report.tokens_removed,
        "rate-limit events": report.rate_events_removed,
    }
    gone = [f"{count} {name}" for name, count in expired.items() if count]
    if gone:
        parts.append("expired: " + ", ".join(gone))
    return "; ".join(parts) or "nothing"


class RetentionWorker:
    """Applies the policy every ``interval`` seconds in a thread of the server; with
    several server processes on one PostgreSQL database, one of them at a time."""

    def __init__(self, retention: Retention, *, interval: float, first_after: float) -> None:
        self.retention = retention
        self.interval = interval
        self.first_after = first_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="perffarm-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        wait = self.first_after
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                self.run_once()
            except Exception:  # the server goes on; the next pass tries again
                log.exception("retention: the pass failed")

    def run_once(self) -> PruneReport | None:
        """One pass, unless another server process is doing one (then None)."""
        engine = self.retention.engine
        if engine.dialect.name != "postgresql":
            return self._pass()
        with engine.connect() as lock:
            got = lock.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
            if not got.scalar_one():
                return None
            try:
                return self._pass()
            finally:
                lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
                lock.commit()

    def _pass(self) -> PruneReport:
        started = time.monotonic()
        report = self.retention.prune()
        self.passes += 1
        log.info("retention: removed %s in %.1f s", describe(report), time.monotonic() - started)
        return report


# -- deletion -----------------------------------------------------------------------------


def delete_run(
    engine: Engine, who: Principal, run_id: str, *, on_tracks: Callable[[list[Any]], None]
) -> int:
    """Delete one run (its machine's owner or an admin); returns the alerts that went with
    it. ``on_tracks`` gets the tracks whose change points must be computed again."""
    at = now()
    with engine.begin() as conn:
        owner = store.run_owner(conn, run_id)
        machine = machines.identity_by_id(conn, owner.machine_id)
        permissions.may_manage_machine(who, owner.machine, machine)
        tracks = store.tracks_of_runs(conn, [run_id])
        alerts = store.alerts_of_runs(conn, [run_id])
        store.delete_runs(conn, [run_id], at=at)
        store.record(
            conn,
            actor=who.describe(),
            action="delete run",
            target=run_id,
            detail=f"project {owner.project}, machine {owner.machine}"
            + (f", and the {alerts} alerts it was the evidence of" if alerts else ""),
            at=at,
        )
    on_tracks(tracks)
    return alerts


def delete_project(
    engine: Engine, who: Principal, project: str, *, on_tracks: Callable[[list[Any]], None]
) -> int:
    """Delete every run of a project (admins only), in batches; returns how many."""
    permissions.require_admin(who)
    at = now()
    with engine.connect() as conn:
        if not store.project_exists(conn, project):
            raise NotFound(f"no project {project!r}")
    deleted = 0
    while True:
        with engine.begin() as conn:
            ids = store.runs_of_project(conn, project, BATCH)
            tracks = store.tracks_of_runs(conn, ids) if ids else []
            deleted += store.delete_runs(conn, ids, at=at)
        on_tracks(tracks)
        if len(ids) < BATCH:
            break
    with engine.begin() as conn:
        marks = store.keep_marks(conn, project)
        for mark in marks:
            store.remove_keep_mark(conn, project, mark.branch)
        store.record(
            conn,
            actor=who.describe(),
            action="delete project",
            target=project,
            detail=f"{deleted} runs",
            at=at,
        )
    return deleted


def retire_machine(engine: Engine, who: Principal, name: str) -> None:
    """Retire a machine (its owner or an admin): it uploads no more, its history stays."""
    at = now()
    with engine.begin() as conn:
        permissions.may_manage_machine(who, name, machines.identity(conn, name))
        if store.retire_machine(conn, name, at=at):
            store.record(conn, actor=who.describe(), action="retire machine", target=name, at=at)
