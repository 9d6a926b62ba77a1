"""Storing uploaded run documents: validated, idempotent on the run id, whole or not at all.

The fast path writes a whole batch of new runs in one transaction. When that transaction
fails because another server process stored one of the same runs meanwhile (or the
database reports a deadlock), every run of the batch is retried in a transaction of its
own, which then sees the other's run and answers "already stored" or "conflict". Either
way a run is written whole (document, its results, its series) or not at all.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from perffarm.model import Result, RunDocument, canonical_params
from perffarm.model.api import FieldError, Outcome, ProbeFigures, RunOutcome, run_id_text
from perffarm.server.db import tables as t
from perffarm.server.machines import Machine
from perffarm.server.timeutil import now, to_db, utc

_CHUNK = 500
_RETRIES = 3


@dataclass
class Prepared:
    index: int
    id: str
    doc: RunDocument
    text: str
    sha256: str


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        errors.append(FieldError(field=path or "(document)", message=error["msg"]))
    return errors


def prepare(index: int, item: dict[str, Any] | RunDocument) -> Prepared | RunOutcome:
    """Validate one document; its canonical text and hash, or an "invalid" outcome."""
    if isinstance(item, RunDocument):
        doc = item
    else:
        try:
            doc = RunDocument.model_validate(item)
        except ValidationError as exc:
            raw_id = item.get("id") if isinstance(item, dict) else None
            return RunOutcome(
                id=run_id_text(raw_id),
                index=index,
                outcome=Outcome.INVALID,
                message="the document is not a valid run document",
                errors=field_errors(exc, f"body.runs.{index}"),
            )
    problems = _column_problems(doc, index)
    if problems:
        return RunOutcome(
            id=str(doc.id),
            index=index,
            outcome=Outcome.INVALID,
            message="the document has values the server cannot index",
            errors=problems,
        )
    # The document is kept as the model serialises it: the same run always gives the same
    # text, so its hash is what idempotency compares.
    text = doc.to_json()
    return Prepared(
        index=index,
        id=str(doc.id),
        doc=doc,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


# Limits of the indexed columns (see db/tables.py), checked before writing so that SQLite,
# which would accept anything, and PostgreSQL, which would fail the transaction, agree.
_RUN_LIMITS = {"project": 200, "tag": 200}
_SOURCE_LIMITS = {"branch": 200, "commit": 100}
_RESULT_LIMITS = {"benchmark": 500, "metric": 200, "unit": 50}


def _check_text(value: str | None, limit: int, field: str, errors: list[FieldError]) -> None:
    if value is None:
        return
    if len(value) > limit:
        errors.append(FieldError(field=field, message=f"longer than {limit} characters"))
    elif "\x00" in value:
        errors.append(FieldError(field=field, message="contains a NUL character"))


def _column_problems(doc: RunDocument, index: int) -> list[FieldError]:
    prefix = f"body.runs.{index}"
    errors: list[FieldError] = []
    for name, limit in _RUN_LIMITS.items():
        _check_text(getattr(doc, name), limit, f"{prefix}.{name}", errors)
    for name, limit in _SOURCE_LIMITS.items():
        _check_text(getattr(doc.source, name), limit, f"{prefix}.source.{name}", errors)
    _check_text(doc.environment.fingerprint, 200, f"{prefix}.environment.fingerprint", errors)
    for number, result in enumerate(doc.results):
        for name, limit in _RESULT_LIMITS.items():
            _check_text(getattr(result, name), limit, f"{prefix}.results.{number}.{name}", errors)
    for field, value in (
        ("started_at", doc.started_at),
        ("finished_at", doc.finished_at),
        ("source.commit_time", doc.source.commit_time),
    ):
        try:
            to_db(value)
        except OverflowError:
            errors.append(FieldError(field=f"{prefix}.{field}", message="out of range in UTC"))
    # Params and the document are JSON text, where a NUL is escaped and harmless.
    return errors[:20]


class Ingestor:
    """Stores runs for one server process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time; queueing writers here is cheaper and fairer than
        # letting them spin on the database lock.
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else nullcontext()
        # Called with (machine id, run ids) after runs are committed; must only enqueue.
        self.on_stored: Callable[[int, list[str]], None] | None = None

    def ingest(
        self,
        machine: Machine,
        items: Sequence[dict[str, Any] | RunDocument],
        probe: ProbeFigures | None = None,
    ) -> list[RunOutcome]:
        outcomes: dict[int, RunOutcome] = {}
        fresh: list[Prepared] = []
        seen: dict[str, Prepared] = {}
        for index, item in enumerate(items):
            prepared = prepare(index, item)
            if isinstance(prepared, RunOutcome):
                outcomes[index] = prepared
                continue
            twin = seen.get(prepared.id)
            if twin is not None:
                outcomes[index] = _repeat(prepared, twin.sha256, "earlier in this batch")
                continue
            seen[prepared.id] = prepared
            fresh.append(prepared)
        received_at = now()
        with self._write_lock:
            if fresh:
                try:
                    outcomes.update(self._store_batch(machine, fresh, probe, received_at))
                except (sa.exc.IntegrityError, sa.exc.OperationalError):
                    for prepared in fresh:
                        outcomes[prepared.index] = self._store_one(
                            machine, prepared, probe, received_at
                        )
            elif probe is not None:
                with self.engine.begin() as conn:
                    _update_machine(conn, machine, [], probe, received_at)
        return [outcomes[index] for index in sorted(outcomes)]

    def _store_batch(
        self,
        machine: Machine,
        batch: list[Prepared],
        probe: ProbeFigures | None,
        received_at: datetime,
    ) -> dict[int, RunOutcome]:
        outcomes: dict[int, RunOutcome] = {}
        with self.engine.begin() as conn:
            known = _existing(conn, [p.id for p in batch])
            new = []
            for prepared in batch:
                if prepared.id in known:
                    outcomes[prepared.index] = _repeat(prepared, known[prepared.id], "before")
                else:
                    new.append(prepared)
            _insert(conn, self.dialect, machine, new, probe, received_at)
            _update_machine(conn, machine, new, probe, received_at)
        for prepared in new:
            outcomes[prepared.index] = _stored(prepared)
        if new and self.on_stored is not None:
            self.on_stored(machine.id, [p.id for p in new])
        return outcomes

    def _store_one(
        self,
        machine: Machine,
        prepared: Prepared,
        probe: ProbeFigures | None,
        received_at: datetime,
    ) -> RunOutcome:
        for attempt in range(_RETRIES):
            try:
                return self._store_batch(machine, [prepared], probe, received_at)[prepared.index]
            except (sa.exc.IntegrityError, sa.exc.OperationalError):
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


def _stored(prepared: Prepared) -> RunOutcome:
    return RunOutcome(
        id=prepared.id, index=prepared.index, outcome=Outcome.STORED, message="stored"
    )


def _repeat(prepared: Prepared, stored_sha256: str, when: str) -> RunOutcome:
    if stored_sha256 == prepared.sha256:
        return RunOutcome(
            id=prepared.id,
            index=prepared.index,
            outcome=Outcome.ALREADY_STORED,
            message=f"already stored ({when})",
        )
    return RunOutcome(
        id=prepared.id,
        index=prepared.index,
        outcome=Outcome.CONFLICT,
        message=f"a different run with id {prepared.id} was stored {when}; run ids must be unique",
    )


def _chunks(values: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _existing(conn: sa.Connection, ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(ids):
        rows = conn.execute(sa.select(t.runs.c.id, t.runs.c.sha256).where(t.runs.c.id.in_(chunk)))
        found.update({row.id: row.sha256 for row in rows})
    return found


def series_key(
    project: str, benchmark: str, params: str, metric: str, fingerprint: str, branch: str
) -> str:
    text = json.dumps([project, benchmark, params, metric, fingerprint, branch])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _series_ids(
    conn: sa.Connection, dialect: str, keys: dict[str, dict[str, str]]
) -> dict[str, int]:
    ids: dict[str, int] = {}
    hashes = sorted(keys)
    for chunk in _chunks(hashes):
        rows = conn.execute(
            sa.select(t.series.c.key_hash, t.series.c.id).where(t.series.c.key_hash.in_(chunk))
        )
        ids.update({row.key_hash: row.id for row in rows})
    missing = [h for h in hashes if h not in ids]
    if missing:
        # Sorted, and ON CONFLICT DO NOTHING: concurrent writers creating the same series
        # wait for each other in one order instead of deadlocking or failing.
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.series)
        conn.execute(
            insert.on_conflict_do_nothing(index_elements=["key_hash"]),
            [{"key_hash": h, **keys[h]} for h in missing],
        )
        for chunk in _chunks(missing):
            rows = conn.execute(
                sa.select(t.series.c.key_hash, t.series.c.id).where(t.series.c.key_hash.in_(chunk))
            )
            ids.update({row.key_hash: row.id for row in rows})
    return ids


def summary_columns(result: Result) -> dict[str, Any]:
    """The summary fields of a result, computed from its samples when the agent sent none."""
    summary = result.summary
    if summary is not None:
        ci = summary.median_ci if summary.median is not None else summary.mean_ci
        return {
            "n": summary.n,
            "mean": summary.mean,
            "median": summary.median,
            "stdev": summary.stdev,
            "min": summary.min,
            "max": summary.max,
            "ci_low": ci.low if ci else None,
            "ci_high": ci.high if ci else None,
        }
    samples = result.samples
    return {
        "n": len(samples),
        "mean": statistics.fmean(samples) if samples else None,
        "median": statistics.median(samples) if samples else None,
        "stdev": statistics.stdev(samples) if len(samples) > 1 else None,
        "min": min(samples) if samples else None,
        "max": max(samples) if samples else None,
        "ci_low": None,
        "ci_high": None,
    }


def _insert(
    conn: sa.Connection,
    dialect: str,
    machine: Machine,
    new: list[Prepared],
    probe: ProbeFigures | None,
    received_at: datetime,
) -> None:
    if not new:
        return
    # Rows in id order: two processes writing overlapping batches lock rows in one order.
    new = sorted(new, key=lambda p: p.id)
    keys: dict[str, dict[str, str]] = {}
    result_keys: list[list[str]] = []
    memo: dict[tuple[Any, ...], str] = {}
    for prepared in new:
        doc = prepared.doc
        fingerprint = doc.environment.fingerprint or ""
        branch = doc.source.branch or ""
        per_run = []
        for result in doc.results:
            # Runs of a batch mostly repeat the same series: remember each key once.
            memo_key = (
                doc.project,
                result.benchmark,
                result.metric,
                fingerprint,
                branch,
                tuple(result.params.items()),
            )
            key = memo.get(memo_key)
            if key is None:
                params = canonical_params(result.params)
                key = series_key(
                    doc.project, result.benchmark, params, result.metric, fingerprint, branch
                )
                memo[memo_key] = key
                keys[key] = {
                    "project": doc.project,
                    "benchmark": result.benchmark,
                    "params": params,
                    "metric": result.metric,
                    "fingerprint": fingerprint,
                    "branch": branch,
                }
            per_run.append(key)
        result_keys.append(per_run)
    series_ids = _series_ids(conn, dialect, keys) if keys else {}
    probe_text = probe.model_dump_json() if probe else None
    conn.execute(
        t.runs.insert(),
        [
            {
                "id": p.id,
                "project": p.doc.project,
                "machine_id": machine.id,
                "tag": p.doc.tag,
                "status": p.doc.status.value,
                "branch": p.doc.source.branch,
                "commit": p.doc.source.commit,
                "commit_time": to_db(p.doc.source.commit_time),
                "fingerprint": p.doc.environment.fingerprint or None,
                "started_at": to_db(p.doc.started_at),
                "finished_at": to_db(p.doc.finished_at),
                "received_at": to_db(received_at),
                "result_count": len(p.doc.results),
                "sha256": p.sha256,
                "probe": probe_text,
                "document": p.text,
            }
            for p in new
        ],
    )
    rows = []
    for prepared, per_run in zip(new, result_keys, strict=True):
        # The series order: commit time, or when the run started for code without one, so
        # that every point has a place (the true commit time stays on the run).
        commit_time = to_db(prepared.doc.source.commit_time or prepared.doc.started_at)
        for result, key in zip(prepared.doc.results, per_run, strict=True):
            rows.append(
                {
                    "run_id": prepared.id,
                    "series_id": series_ids[key],
                    "machine_id": machine.id,
                    "commit_time": commit_time,
                    "benchmark": result.benchmark,
                    "params": keys[key]["params"],
                    "metric": result.metric,
                    "unit": result.unit,
                    "direction": result.direction.value,
                    "samples": json.dumps(result.samples),
                    **summary_columns(result),
                }
            )
    if rows:
        conn.execute(t.results.insert(), rows)


def _update_machine(
    conn: sa.Connection,
    machine: Machine,
    new: list[Prepared],
    probe: ProbeFigures | None,
    received_at: datetime,
) -> None:
    """Keep the machine's description current and record every change of fingerprint.

    Runs are taken in the order they ran, and only runs newer than the one the current
    description came from count, so an old run uploaded late changes nothing.
    """
    row = conn.execute(
        sa.select(t.machines.c.fingerprint, t.machines.c.metadata_run_started_at)
        .where(t.machines.c.id == machine.id)
        .with_for_update()
    ).one()
    fingerprint = row.fingerprint
    latest_at = utc(row.metadata_run_started_at)
    latest: Prepared | None = None
    changes = []
    for prepared in sorted(new, key=lambda p: (p.doc.started_at, p.id)):
        started = to_db(prepared.doc.started_at)
        if latest_at is not None and started is not None and started < latest_at:
            continue
        latest, latest_at = prepared, started
        new_fingerprint = prepared.doc.environment.fingerprint
        if new_fingerprint and new_fingerprint != fingerprint:
            changes.append(
                {
                    "machine_id": machine.id,
                    "old": fingerprint,
                    "new": new_fingerprint,
                    "run_id": prepared.id,
                    "at": to_db(received_at),
                }
            )
            fingerprint = new_fingerprint
    values: dict[str, Any] = {"last_seen": to_db(received_at)}
    if latest is not None:
        values.update(
            fingerprint=fingerprint,
            metadata=json.dumps(latest.doc.environment.sections, default=str),
            metadata_run_started_at=latest_at,
        )
    if probe is not None:
        values["probe"] = probe.model_dump_json()
    conn.execute(t.machines.update().where(t.machines.c.id == machine.id).values(**values))
    if changes:
        conn.execute(t.fingerprint_changes.insert(), changes)
