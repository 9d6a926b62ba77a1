"""Turning what was measured into a stored run document.

Shared by ``perffarm run`` (the runner) and ``perffarm ingest`` (results read by an adapter):
both describe the machine, compute statistics, scrub secrets and save in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from perffarm import __version__
from perffarm.analysis.statistics import summarize
from perffarm.model import (
    Agent,
    Attachment,
    BuildStep,
    Environment,
    MeasurementRecord,
    MeasurementStatus,
    Result,
    RunDocument,
    Series,
    Source,
    Table,
)
from perffarm.redact import hide_values, hide_values_in_bytes


def describe_machine(cwd: Path, fingerprint_keys: list[str] | None = None) -> Environment:
    from perffarm.agent.collectors import collect_environment

    return collect_environment(cwd, fingerprint_keys=fingerprint_keys)


def describe_source(cwd: Path) -> Source:
    from perffarm.agent.collectors import source_from_git

    try:
        return source_from_git(cwd)
    except Exception:
        # The source is a description, not a requirement: a broken git never fails a run.
        return Source()


def add_statistics(results: Iterable[Result]) -> None:
    """Fill every result's summary from its samples (kept when a tool gave only a summary)."""
    for result in results:
        if result.samples or result.summary is None:
            result.summary = summarize(result.samples)


def merge_environment(environment: Environment, sections: dict[str, dict[str, Any]]) -> None:
    """Add what measurements found (a server's version and settings) to the collectors'."""
    for name, values in sections.items():
        environment.sections.setdefault(name, {}).update(values)


def agent_info() -> Agent:
    return Agent(version=__version__, command=[Path(sys.argv[0]).name, *sys.argv[1:]])


# The text fields that name or identify something (series keys, references between parts
# of the document, file names): never scrubbed, so that scrubbing cannot break a run. Every
# other text value is free text (outputs, errors, command lines, options, environment values)
# and is scrubbed; keys of mappings, numbers, timestamps, ids and enums never are.
_IDENTIFIERS: dict[type[BaseModel], frozenset[str]] = {
    RunDocument: frozenset({"schema_", "project", "tag", "suite", "machine"}),
    Source: frozenset({"branch", "commit"}),
    Result: frozenset({"benchmark", "metric", "unit", "original_unit", "measurement"}),
    Table: frozenset({"name", "fields", "measurement"}),
    Series: frozenset({"name", "unit", "measurement"}),
    Environment: frozenset({"fingerprint", "fingerprint_keys"}),
    BuildStep: frozenset({"name", "log_attachment"}),
    MeasurementRecord: frozenset({"name", "type"}),
    Agent: frozenset({"name", "version"}),
}
# How many parts of a document that does not validate are left out before giving up.
_MAX_LEFT_OUT = 1000


def redact(document: RunDocument, secrets: list[str]) -> RunDocument:
    """The document with every secret value replaced by ``***`` in its free text and in its
    attachments; keys, ids, timestamps and numbers are left as they are.

    Secrets are only expanded where a command needs them, but a command may echo one into
    its output or an error message may quote it: this is the last line of defence. The
    result is validated again (a plug-in may have changed a part after the checks that
    made it), and a run is never lost: a part that does not validate is left out, the rest
    of the measurements is kept, and the run's ``error`` says what was left out and why.
    """
    secrets = [secret for secret in secrets if secret]
    data = _scrubbed(document, secrets)
    left_out: list[tuple[tuple[Any, ...], str]] = []  # where, why
    while True:
        try:
            scrubbed = RunDocument.model_validate(data)
            # What the store keeps is the JSON form (a NaN becomes null): it must read back.
            RunDocument.model_validate_json(scrubbed.to_json())
            break
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = first["msg"].removeprefix("Value error, ")
            loc = tuple(first["loc"])
            if first["type"] == "missing" and left_out and left_out[-1][0] == loc:
                # What was left out was required: its whole owner goes, for the same reason.
                reason = left_out.pop()[1]
            where = _leave_out(data, first) if len(left_out) < _MAX_LEFT_OUT else None
            if where is None:
                raise
            left_out.append((where, reason))
    if left_out:
        what = "; ".join(f"{_dotted(where)} ({reason})" for where, reason in left_out)
        note = redact_text(f"left out before storing, as it did not validate: {what}", secrets)
        error = f"{scrubbed.error}; {note}" if scrubbed.error else note
        scrubbed = scrubbed.model_copy(update={"error": error})
    return scrubbed


def redact_text(text: str, secrets: list[str]) -> str:
    return hide_values(text, secrets)


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    """``value`` as plain data (models as dicts of their fields) with its free text hidden."""
    if isinstance(value, Attachment):
        raw = value.data()
        cleaned = hide_values_in_bytes(raw, secrets)
        fields = {name: getattr(value, name) for name in type(value).model_fields}
        if cleaned != raw:
            fields.update(
                content=base64.b64encode(cleaned).decode("ascii"),
                size=len(cleaned),
                sha256=hashlib.sha256(cleaned).hexdigest(),
            )
        return fields
    if isinstance(value, BaseModel):
        kept = _IDENTIFIERS.get(type(value), frozenset())
        return {
            name: getattr(value, name) if name in kept else _scrubbed(getattr(value, name), secrets)
            for name in type(value).model_fields
        }
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        if all(isinstance(item, int | float) for item in value):
            return list(value)  # samples, times: the long lists, and never text
        return [_scrubbed(item, secrets) for item in value]
    if isinstance(value, str) and not isinstance(value, Enum):
        return redact_text(value, secrets)
    return value


def _leave_out(data: dict[str, Any], error: Any) -> tuple[Any, ...] | None:
    """Remove the innermost part of ``data`` at the error's location (a list item or a
    mapping entry; the part holding a required field that is missing); where it was."""
    loc = list(error["loc"])
    if error["type"] == "missing":
        loc = loc[:-1]
    while loc:
        parent: Any = data
        for part in loc[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        last = loc[-1]
        if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
            del parent[last]
            return tuple(loc)
        if isinstance(parent, dict) and last in parent:
            del parent[last]
            return tuple(loc)
        loc.pop()
    return None


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def record_ingested_run(
    parsed: Any,
    *,
    project: str,
    tag: str | None,
    store_path: Path | None,
    source_name: str,
    machine: str | None = None,
    format_name: str | None = None,
) -> RunDocument:
    """Store results read by an adapter as a run of this machine; returns the stored run."""
    from perffarm.agent.store import LocalStore

    started = datetime.now(UTC)
    cwd = Path.cwd()
    environment = describe_machine(cwd)
    if parsed.environment:
        merge_environment(environment, {f"tool.{format_name or 'adapter'}": parsed.environment})
    add_statistics(parsed.results)
    document = RunDocument(
        project=project,
        tag=tag,
        suite=source_name,
        started_at=started,
        finished_at=datetime.now(UTC),
        machine=machine or socket.gethostname(),
        source=parsed.source or describe_source(cwd),
        environment=environment,
        measurements=[
            MeasurementRecord(
                name=Path(source_name).name,
                type=f"ingest:{format_name}" if format_name else "ingest",
                status=MeasurementStatus.OK,
                started_at=started,
                finished_at=datetime.now(UTC),
            )
        ],
        results=parsed.results,
        tables=parsed.tables,
        attachments=parsed.attachments,
        series=parsed.series,
        agent=agent_info(),
    )
    with LocalStore(store_path) as store:
        store.save(document)
    return document
