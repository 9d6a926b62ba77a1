"""Storing uploaded run documents: validated, idempotent on the run id, whole or not at all.

The fast path writes a whole batch of new runs in one transaction. When that transaction
fails because another server process stored one of the same runs meanwhile (or the
database reports a deadlock), every run of the batch is retried in a transaction of its
own, which then sees the other's run and answers "already stored" or "conflict". Either
way a run is written whole (document, its results, its series) or not at all.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from perffarm.model import RunDocument
from perffarm.model.api import FieldError, Outcome, ProbeFigures, RunOutcome, run_id_text
from perffarm.model.run import index_problems
from perffarm.server.core.principal import Machine
from perffarm.server.core.timeutil import now
from perffarm.server.store import ingest as store
from perffarm.server.store import lifecycle
from perffarm.server.store.ingest import NewRun

_RETRIES = 3


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        errors.append(FieldError(field=path or "(document)", message=error["msg"]))
    return errors


def prepare(index: int, item: dict[str, Any] | RunDocument) -> NewRun | RunOutcome:
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
    return NewRun(
        index=index,
        id=str(doc.id),
        doc=doc,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def _column_problems(doc: RunDocument, index: int) -> list[FieldError]:
    # The model's rule (model.run.index_problems), checked before writing so that SQLite,
    # which would accept anything, and PostgreSQL, which would fail the transaction, agree.
    # Params and the document are JSON text, where a NUL is escaped and harmless.
    return [
        FieldError(field=f"body.runs.{index}.{field}", message=problem)
        for field, problem in index_problems(doc)[:20]
    ]


class Ingestor:
    """Stores runs for one server process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time; queueing writers here is cheaper and fairer than
        # letting them spin on the database lock.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else nullcontext()
        )
        # Called with (machine id, run ids) after runs are committed; must only enqueue.
        self.on_stored: Callable[[int, list[str]], None] | None = None

    def ingest(
        self,
        machine: Machine,
        items: Sequence[dict[str, Any] | RunDocument],
        probe: ProbeFigures | None = None,
    ) -> list[RunOutcome]:
        outcomes: dict[int, RunOutcome] = {}
        fresh: list[NewRun] = []
        seen: dict[str, NewRun] = {}
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
                    store.update_machine(conn, machine, [], probe, received_at)
        return [outcomes[index] for index in sorted(outcomes)]

    def _store_batch(
        self,
        machine: Machine,
        batch: list[NewRun],
        probe: ProbeFigures | None,
        received_at: datetime,
    ) -> dict[int, RunOutcome]:
        outcomes: dict[int, RunOutcome] = {}
        with self.engine.begin() as conn:
            known = store.existing(conn, [p.id for p in batch])
            taken = lifecycle.deleted_elsewhere(
                conn, [p.id for p in batch if p.id not in known], machine.id
            )
            new = []
            for prepared in batch:
                if prepared.id in known:
                    outcomes[prepared.index] = _repeat(prepared, known[prepared.id], "before")
                elif prepared.id in taken:
                    outcomes[prepared.index] = RunOutcome(
                        id=prepared.id,
                        index=prepared.index,
                        outcome=Outcome.CONFLICT,
                        message=f"run {prepared.id} was deleted, and only the machine that "
                        "sent it may send it again: give this run a new id",
                    )
                else:
                    new.append(prepared)
            store.insert_runs(conn, machine, new, probe, received_at)
            store.update_machine(conn, machine, new, probe, received_at)
        for prepared in new:
            outcomes[prepared.index] = _stored(prepared)
        if new and self.on_stored is not None:
            self.on_stored(machine.id, [p.id for p in new])
        return outcomes

    def _store_one(
        self,
        machine: Machine,
        prepared: NewRun,
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


def _stored(prepared: NewRun) -> RunOutcome:
    return RunOutcome(
        id=prepared.id, index=prepared.index, outcome=Outcome.STORED, message="stored"
    )


def _repeat(prepared: NewRun, stored_sha256: str, when: str) -> RunOutcome:
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
