"""The upload: send every stored run the server lacks, and nothing twice.

A run is marked uploaded in the local store only once the server has answered that it
stored it (or already had it), so an upload killed at any moment resumes cleanly: runs
already acknowledged are not sent again, the others are, and the server's idempotency on
the run id absorbs a run that was stored but whose answer never arrived.

The HTTP side (retries with backoff, the API-version check, typed errors) is
``perffarm.client.Client``; the machine credentials are ``perffarm.client.credentials``
(``credentials.json`` in the credentials directory, mode 0600). The names this module
exported before (``ServerClient``, ``UploadError``, ``load_credentials``, ...) stay
importable from here for the commands that use them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from perffarm.agent.probe import probe as run_probe
from perffarm.agent.store import LocalStore
from perffarm.client import errors
from perffarm.client._core import normalize_server
from perffarm.client.credentials import (
    CONFIG_DIR_ENV,
    Credentials,
    config_dir,
    load_credentials,
    save_credentials,
    write_private_json,
)
from perffarm.client.credentials import MACHINE_FILE as CREDENTIALS_FILE
from perffarm.client.sync import Client
from perffarm.model.api import (
    BatchResult,
    MachineCredentials,
    MachineInfo,
    Outcome,
    ProbeFigures,
)

__all__ = [
    "CONFIG_DIR_ENV",
    "CREDENTIALS_FILE",
    "Credentials",
    "IncompatibleServer",
    "NoCredentials",
    "ServerClient",
    "ServerUnreachable",
    "UploadError",
    "UploadReport",
    "WrongCredentials",
    "config_dir",
    "conflict_reason",
    "load_credentials",
    "normalize_server",
    "save_credentials",
    "upload",
    "write_private_json",
]

DEFAULT_BATCH_RUNS = 50
# Well under the server's default 32 MiB limit, measured before compression (the server
# limits the decompressed size too).
DEFAULT_BATCH_BYTES = 8 * 1024 * 1024

#: Every error of the upload is one of the client's; these are their names here.
UploadError = errors.ClientError
NoCredentials = errors.NoCredentials
ServerUnreachable = errors.ServerUnreachable
WrongCredentials = errors.Unauthorized
IncompatibleServer = errors.IncompatibleServer


class ServerClient(Client):
    """``perffarm.client.Client`` with what only the agent does: the round-trip probe.

    ``retries`` tries after the first, waiting ``backoff`` seconds, then twice that, and
    so on (capped at 10 s, plus jitter); see ``perffarm.client._core``.
    """

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            server,
            token=token,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            transport=transport,
            sleep=sleep,
        )

    def probe(self, duration: float = 1.0) -> ProbeFigures:
        """Request/response round trips over this client's kept-alive connection."""
        return run_probe(self.http, duration=duration)

    def register(self, name: str, owner: str) -> MachineCredentials:
        return self.register_machine(name, owner)

    def approve(self, name: str) -> MachineInfo:
        return self.approve_machine(name)

    def upload_batch(self, documents: list[str], probe: ProbeFigures | None) -> BatchResult | None:
        """Send documents (their stored JSON text, unchanged); None when the body is too large."""
        try:
            return self.submit_runs(documents, probe)
        except errors.TooLarge:
            return None


# -- upload ----------------------------------------------------------------------------


@dataclass
class UploadReport:
    server: str
    machine: str
    pending: int
    dry_run: bool = False
    stored: list[str] = field(default_factory=list)
    already_stored: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    """Among ``refused``: runs the server holds other content of under their ids."""
    machine_approved: bool | None = None
    probe: ProbeFigures | None = None
    pending_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "machine": self.machine,
            "dry_run": self.dry_run,
            "pending": self.pending,
            "pending_ids": self.pending_ids if self.dry_run else None,
            "stored": self.stored,
            "already_stored": self.already_stored,
            "refused": self.refused,
            "conflicts": self.conflicts,
            "machine_approved": self.machine_approved,
            "probe": self.probe.model_dump(mode="json") if self.probe else None,
        }


def _batches(
    store: LocalStore, run_ids: list[str], max_runs: int, max_bytes: int
) -> Iterator[list[tuple[str, str]]]:
    batch: list[tuple[str, str]] = []
    size = 0
    for run_id in run_ids:
        text = store.load_json(run_id)
        if batch and (len(batch) >= max_runs or size + len(text) > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append((run_id, text))
        size += len(text)
    if batch:
        yield batch


def upload(
    store: LocalStore,
    credentials: Credentials,
    *,
    dry_run: bool = False,
    batch_runs: int = DEFAULT_BATCH_RUNS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    probe_seconds: float = 1.0,
    client: ServerClient | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> UploadReport:
    """Send the runs ``credentials.server`` has not acknowledged; see the module docstring.

    Raises UploadError (one line) when the server cannot be reached, refuses the
    credentials, or speaks an incompatible API; runs acknowledged before stay marked.
    """
    server = credentials.server
    pending = store.pending_uploads(server)
    report = UploadReport(server=server, machine=credentials.machine, pending=len(pending))
    if dry_run:
        report.dry_run = True
        report.pending_ids = pending
        return report
    own_client = client is None
    client = client or ServerClient(server, token=credentials.token)
    try:
        client.health()
        me = client.me()
        report.machine_approved = me.approved
        # Measured only when there is something to send: the figures travel with runs.
        if probe_seconds > 0 and pending:
            try:
                report.probe = client.probe(probe_seconds)
            except (httpx.HTTPError, errors.ClientError):
                # The probe is a measurement beside the upload, never a reason to fail it.
                report.probe = None
        if on_start:
            on_start(len(pending))
        queue = list(_batches(store, pending, batch_runs, batch_bytes))
        while queue:
            batch = queue.pop(0)
            result = client.upload_batch([text for _, text in batch], report.probe)
            if result is None:
                if len(batch) > 1:
                    half = len(batch) // 2
                    queue[:0] = [batch[:half], batch[half:]]
                    continue
                report.refused[batch[0][0]] = (
                    "larger than the server's size limit (ask its admin for a larger --max-body)"
                )
                if on_progress:
                    on_progress(1)
                continue
            report.machine_approved = result.machine_approved
            for outcome in result.outcomes:
                run_id = batch[outcome.index][0]
                if outcome.acknowledged:
                    store.mark_uploaded(run_id, server)
                    target = report.stored if outcome.outcome == "stored" else report.already_stored
                    target.append(run_id)
                elif outcome.outcome is Outcome.CONFLICT:
                    report.conflicts.append(run_id)
                    report.refused[run_id] = conflict_reason(server, run_id)
                else:
                    fields = "; ".join(f"{e.field}: {e.message}" for e in outcome.errors[:3])
                    report.refused[run_id] = outcome.message + (f" ({fields})" if fields else "")
            if on_progress:
                on_progress(len(batch))
    except errors.ServerUnreachable as exc:
        done = len(report.stored) + len(report.already_stored)
        raise errors.ServerUnreachable(
            f"{exc} ({done} of {len(pending)} runs were acknowledged before; the others stay "
            "pending)",
            tries=exc.tries,
        ) from None
    finally:
        if own_client:
            client.close()
    return report


def conflict_reason(server: str, run_id: str) -> str:
    """Why the server refused a run it holds other content of (409), and what to do.

    The server never replaces a stored run; the usual cause is a run replaced in the local
    store after its upload (``perffarm import --replace``), which left it pending again.
    """
    return (
        f"{server} keeps other content under this id (409 conflict: the run changed in the "
        "local store after it was uploaded, e.g. by `perffarm import --replace`); to undo the "
        f"local change, import the server's copy ({server}/runs/{run_id}/run.json) with "
        '`perffarm import --replace`; to keep it, give it a new "id" and import it'
    )
