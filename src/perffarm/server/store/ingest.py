"""Writing runs: the documents, their results, their series, and the machine's description,
in the caller's transaction. ``services/ingest.py`` decides what to write."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from perffarm.analysis.statistics import basic_summary
from perffarm.model import Result, RunDocument, canonical_params
from perffarm.model.api import ProbeFigures
from perffarm.server.core.principal import Machine
from perffarm.server.core.timeutil import to_db, utc
from perffarm.server.store import series as series_rows
from perffarm.server.store import tables as t
from perffarm.server.store.series import chunks, series_key


@dataclass
class NewRun:
    """A run document ready to store: its id, the model, its canonical text and hash."""

    index: int
    id: str
    doc: RunDocument
    text: str
    sha256: str


def existing(conn: sa.Connection, ids: list[str]) -> dict[str, str]:
    """The stored hash of each of these run ids that is stored already."""
    found: dict[str, str] = {}
    for chunk in chunks(ids):
        rows = conn.execute(sa.select(t.runs.c.id, t.runs.c.sha256).where(t.runs.c.id.in_(chunk)))
        found.update({row.id: row.sha256 for row in rows})
    return found


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
    return {**basic_summary(result.samples)._asdict(), "ci_low": None, "ci_high": None}


def insert_runs(
    conn: sa.Connection,
    machine: Machine,
    new: list[NewRun],
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
    series_ids = series_rows.upsert(conn, keys) if keys else {}
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


def update_machine(
    conn: sa.Connection,
    machine: Machine,
    new: list[NewRun],
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
    latest: NewRun | None = None
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
