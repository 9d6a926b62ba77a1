"""The upload client: send every stored run the server lacks, and nothing twice.

A run is marked uploaded in the local store only once the server has answered that it
stored it (or already had it), so an upload killed at any moment resumes cleanly: runs
already acknowledged are not sent again, the others are, and the server's idempotency on
the run id absorbs a run that was stored but whose answer never arrived.

Credentials (server URL, machine name, secret) live in ``credentials.json`` in the user's
config directory (``PERFFARM_CONFIG_DIR`` or ``--creds-dir`` to override), mode 0600.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import platformdirs

from perffarm import __version__
from perffarm.agent.probe import probe as run_probe
from perffarm.agent.store import LocalStore
from perffarm.model.api import (
    API_PREFIX,
    API_VERSION,
    API_VERSION_HEADER,
    CLIENT_MIN_SERVER_API,
    BatchResult,
    Health,
    MachineCredentials,
    MachineInfo,
    ProbeFigures,
)

CONFIG_DIR_ENV = "PERFFARM_CONFIG_DIR"
CREDENTIALS_FILE = "credentials.json"
DEFAULT_BATCH_RUNS = 50
# Well under the server's default 32 MiB limit, measured before compression (the server
# limits the decompressed size too).
DEFAULT_BATCH_BYTES = 8 * 1024 * 1024


class UploadError(Exception):
    """Something the user must know about; the message is one line saying what to do."""


class NoCredentials(UploadError):
    pass


class ServerUnreachable(UploadError):
    pass


class WrongCredentials(UploadError):
    pass


class IncompatibleServer(UploadError):
    pass


def normalize_server(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


# -- credentials -----------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    server: str
    machine: str
    secret: str

    @property
    def token(self) -> str:
        return f"{self.machine}:{self.secret}"


def config_dir(override: str | Path | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    configured = os.environ.get(CONFIG_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_config_dir("perffarm"))


def _read_credentials_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"default": None, "servers": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("servers"), dict):
            raise ValueError("no 'servers' object")
    except (OSError, ValueError, AttributeError) as exc:
        raise NoCredentials(
            f"cannot read the credentials file {path}: {exc} "
            "(fix or delete it, then run `perffarm machine register`)"
        ) from None
    return data


def load_credentials(directory: Path, server: str | None = None) -> Credentials:
    """The credentials for ``server``, or for the default server when None."""
    path = directory / CREDENTIALS_FILE
    data = _read_credentials_file(path)
    key = normalize_server(server) if server else data.get("default")
    entry = data["servers"].get(key) if key else None
    if entry is None:
        where = f" for {key}" if key else ""
        raise NoCredentials(
            f"no machine credentials{where} in {path}: run "
            f"`perffarm machine register NAME --server {key or 'URL'}` first"
        )
    return Credentials(server=key, machine=entry["machine"], secret=entry["secret"])


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON readable by the user only, whole or not at all.

    The file is created 0600 before anything is written and renamed over the old one, so a
    secret is never readable by others, not even briefly, and a crash leaves the old file
    or the new one, never half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_credentials(directory: Path, credentials: Credentials) -> Path:
    """Add or replace one server's credentials; written whole, readable by the user only."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / CREDENTIALS_FILE
    data = _read_credentials_file(path)
    data["servers"][credentials.server] = {
        "server": credentials.server,
        "machine": credentials.machine,
        "secret": credentials.secret,
        "saved_at": datetime.now(UTC).isoformat(),
    }
    data["default"] = credentials.server
    write_private_json(path, data)
    return path


# -- talking to the server -------------------------------------------------------------


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else f"HTTP {response.status_code}"


class ServerClient:
    """HTTP to one results server, with retries and exponential backoff.

    Connection errors, timeouts and 5xx answers are retried ``retries`` times, waiting
    ``backoff``, then twice that, and so on (capped at 10 s); anything else is answered
    at once. Requests reuse one kept-alive connection.
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
        self.server = normalize_server(server)
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        headers = {
            API_VERSION_HEADER: str(API_VERSION),
            "User-Agent": f"perffarm/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            base_url=self.server,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.http.request(method, f"{API_PREFIX}{path}", **kwargs)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                if last:
                    raise ServerUnreachable(
                        f"cannot reach the results server at {self.server} ({_reason(exc)}, "
                        f"{attempt + 1} tries): check that it runs and that --server is right, "
                        "then run the command again"
                    ) from None
            else:
                if response.status_code < 500 or last:
                    return response
            self._sleep(delay)
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")

    def _check(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code >= 500:
            raise ServerUnreachable(
                f"the results server at {self.server} fails ({_detail(response)}) while {what}; "
                "retry later or ask its admin to look at its log"
            )
        if response.status_code == 401:
            raise WrongCredentials(
                f"the results server at {self.server} refused the credentials while {what}: "
                f"{_detail(response)}"
            )
        if response.status_code >= 400:
            raise UploadError(
                f"the results server at {self.server} refused {what}: {_detail(response)}"
            )
        return response

    def health(self) -> Health:
        """The server's health, refusing a server whose API this client does not speak."""
        response = self.request("GET", "/health")
        if response.status_code == 404:
            raise IncompatibleServer(
                f"{self.server} does not answer {API_PREFIX}/health: it is not a perffarm "
                "results server, or one too old for this perffarm (upgrade the server)"
            )
        self._check(response, "checking its health")
        try:
            data = response.json()
            api_version = int(data["api_version"])
            min_client = int(data.get("min_client_api_version", 1))
        except (ValueError, KeyError, TypeError):
            raise IncompatibleServer(
                f"{self.server} answered {API_PREFIX}/health with something that is not a "
                "perffarm health answer: check --server"
            ) from None
        if api_version < CLIENT_MIN_SERVER_API:
            raise IncompatibleServer(
                f"the results server at {self.server} is too old (API {api_version}; this "
                f"perffarm needs API {CLIENT_MIN_SERVER_API} or newer): upgrade the server"
            )
        if min_client > API_VERSION:
            raise IncompatibleServer(
                f"the results server at {self.server} is too new (it needs clients of API "
                f"{min_client} or newer; this perffarm speaks API {API_VERSION}): "
                "upgrade perffarm on this machine"
            )
        return Health.model_validate({k: v for k, v in data.items() if k in Health.model_fields})

    def register(self, name: str, owner: str) -> MachineCredentials:
        response = self.request("POST", "/machines", json={"name": name, "owner": owner})
        if response.status_code == 403:
            raise UploadError(f"{self.server} refused the registration: {_detail(response)}")
        self._check(response, f"registering machine {name!r}")
        return MachineCredentials.model_validate(response.json())

    def me(self) -> MachineInfo:
        return MachineInfo.model_validate(
            self._check(self.request("GET", "/machines/me"), "checking this machine").json()
        )

    def approve(self, name: str) -> MachineInfo:
        response = self.request("POST", f"/machines/{name}/approve")
        if response.status_code == 404:
            raise UploadError(f"{self.server} has no machine named {name!r}")
        return MachineInfo.model_validate(self._check(response, f"approving {name!r}").json())

    def machines(self) -> Iterator[MachineInfo]:
        cursor = None
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = self._check(self.request("GET", "/machines", params=params), "listing").json()
            for item in page["items"]:
                yield MachineInfo.model_validate(item)
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def probe(self, duration: float = 1.0) -> ProbeFigures:
        return run_probe(self.http, duration=duration)

    def upload_batch(self, documents: list[str], probe: ProbeFigures | None) -> BatchResult | None:
        """Send documents (their stored JSON text, unchanged); None when the body is too large."""
        body = (
            '{"runs":['
            + ",".join(documents)
            + '],"probe":'
            + (probe.model_dump_json() if probe else "null")
            + "}"
        ).encode("utf-8")
        response = self.request(
            "POST",
            "/runs/batch",
            content=gzip.compress(body, compresslevel=5),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        if response.status_code == 413:
            return None
        self._check(response, "storing runs")
        return BatchResult.model_validate(response.json())


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
            except (httpx.HTTPError, UploadError):
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
                else:
                    errors = "; ".join(f"{e.field}: {e.message}" for e in outcome.errors[:3])
                    report.refused[run_id] = outcome.message + (f" ({errors})" if errors else "")
            if on_progress:
                on_progress(len(batch))
    except ServerUnreachable as exc:
        done = len(report.stored) + len(report.already_stored)
        raise ServerUnreachable(
            f"{exc} ({done} of {len(pending)} runs were acknowledged before; the others stay "
            "pending)"
        ) from None
    finally:
        if own_client:
            client.close()
    return report
