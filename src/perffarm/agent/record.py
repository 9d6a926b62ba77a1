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
from pathlib import Path
from typing import Any

from perffarm import __version__
from perffarm.analysis.statistics import summarize
from perffarm.model import (
    Agent,
    Environment,
    MeasurementRecord,
    MeasurementStatus,
    Result,
    RunDocument,
    Source,
)
from perffarm.redact import HIDDEN_VALUE as REDACTED
from perffarm.redact import hide_values


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


def redact(document: RunDocument, secrets: list[str]) -> RunDocument:
    """The document with every secret value replaced, in text and in attachments.

    Secrets are only expanded where a command needs them, but a command may echo one into
    its output or an error message may quote it: this is the last line of defence.
    """
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        return document
    data = document.model_dump(mode="json", by_alias=True)
    attachments = data.pop("attachments", [])
    for attachment in attachments:
        raw = base64.b64decode(attachment["content"])
        cleaned = _redact_bytes(raw, secrets)
        if cleaned != raw:
            attachment["content"] = base64.b64encode(cleaned).decode("ascii")
            attachment["size"] = len(cleaned)
            attachment["sha256"] = hashlib.sha256(cleaned).hexdigest()
        for key in ("name", "media_type", "measurement"):
            if attachment.get(key):
                attachment[key] = redact_text(attachment[key], secrets)
    data = _redact_value(data, secrets)
    data["attachments"] = attachments
    return RunDocument.model_validate(data)


def redact_text(text: str, secrets: list[str]) -> str:
    return hide_values(text, secrets)


def _redact_bytes(data: bytes, secrets: list[str]) -> bytes:
    for secret in secrets:
        data = data.replace(secret.encode("utf-8"), REDACTED.encode("ascii"))
    return data


def _redact_value(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {
            redact_text(key, secrets): _redact_value(item, secrets) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact_value(item, secrets) for item in value]
    return value


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
