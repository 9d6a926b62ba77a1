"""The typed calls of the API, described once for both clients: what each sends, what it
is for (said in error messages), and how its answer is read.

``Client.me()`` is ``self.call(calls.me())``, ``AsyncClient.me()`` is
``await self.call(calls.me())``: adding a call here and one line in each client is all.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from perffarm.client._core import Call
from perffarm.client._documents import RunLike, run_json
from perffarm.model import RunDocument
from perffarm.model.api import (
    BatchResult,
    MachineCredentials,
    MachineGrant,
    MachineInfo,
    ProbeFigures,
    SingleResult,
)
from perffarm.model.lifecycle import (
    AuditEvent,
    KeepRequest,
    ProjectDeleted,
    PruneReport,
    RunDeleted,
    Usage,
)
from perffarm.model.loadtest import BatchAck, LoadTestToken

JSON = {"Content-Type": "application/json"}
#: Runs per page when a listing is followed to its end.
PAGE = 1000


def _segment(value: str) -> str:
    return quote(value, safe="")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    if not isinstance(data, dict):
        raise TypeError(f"a JSON object was expected, not {type(data).__name__}")
    return data


# -- machines --------------------------------------------------------------------------


def me() -> Call[MachineInfo]:
    """The machine the credentials belong to."""
    return Call(
        "GET",
        "/machines/me",
        "checking this machine",
        lambda r: MachineInfo.model_validate_json(r.content),
    )


def register_machine(name: str, owner: str) -> Call[MachineCredentials]:
    """A new machine; the answer holds its secret, shown this one time."""
    return Call(
        "POST",
        "/machines",
        f"registering machine {name!r}",
        lambda r: MachineCredentials.model_validate_json(r.content),
        # Sent twice, the second would be refused as a name already taken.
        idempotent=False,
        options={"json": {"name": name, "owner": owner}},
    )


def approve_machine(name: str) -> Call[MachineInfo]:
    return Call(
        "POST",
        f"/machines/{_segment(name)}/approve",
        f"approving machine {name!r}",
        lambda r: MachineInfo.model_validate_json(r.content),
        idempotent=True,
    )


def _grants(response: httpx.Response) -> list[MachineGrant]:
    return [MachineGrant.model_validate(item) for item in _json_object(response)["items"]]


def machine_grants(name: str) -> Call[list[MachineGrant]]:
    """The users the machine's owner lets act on its alerts and series."""
    return Call(
        "GET", f"/machines/{_segment(name)}/grants", f"listing who may act on {name!r}", _grants
    )


def grant_machine(name: str, user: str) -> Call[list[MachineGrant]]:
    """Let ``user`` act on the machine's alerts and series; the grants after it."""
    return Call(
        "POST",
        f"/machines/{_segment(name)}/grants",
        f"letting {user!r} act on machine {name!r}",
        _grants,
        # A grant given twice is one grant.
        idempotent=True,
        options={"json": {"user": user}},
    )


def ungrant_machine(name: str, user: str) -> Call[list[MachineGrant]]:
    """End ``user``'s right to act on the machine; the grants after it."""
    return Call(
        "DELETE",
        f"/machines/{_segment(name)}/grants/{_segment(user)}",
        f"ending {user!r}'s right to act on machine {name!r}",
        _grants,
        # Sent again after it was done, it would be refused as a grant that is not there.
        idempotent=False,
    )


def retire_machine(name: str) -> Call[MachineInfo]:
    """Retire a machine: its history stays, it uploads no more."""
    return Call(
        "POST",
        f"/machines/{_segment(name)}/retire",
        f"retiring machine {name!r}",
        lambda r: MachineInfo.model_validate_json(r.content),
        idempotent=True,
    )


# -- data over years ---------------------------------------------------------------------


def delete_run(run_id: str) -> Call[RunDeleted]:
    return Call(
        "DELETE",
        f"/runs/{_segment(run_id)}",
        f"deleting run {run_id}",
        lambda r: RunDeleted.model_validate_json(r.content),
        # Sent again after it was done, it would answer that there is no such run.
        idempotent=False,
    )


def keep_run(run_id: str, keep: bool) -> Call[KeepRequest]:
    return Call(
        "PUT",
        f"/runs/{_segment(run_id)}/keep",
        f"marking run {run_id}",
        lambda r: KeepRequest.model_validate_json(r.content),
        idempotent=True,
        options={"json": {"keep": keep}},
    )


def delete_project(project: str) -> Call[ProjectDeleted]:
    return Call(
        "DELETE",
        f"/projects/{_segment(project)}",
        f"deleting project {project!r}",
        lambda r: ProjectDeleted.model_validate_json(r.content),
        idempotent=False,
    )


def keep_project(project: str, branch: str, keep: bool) -> Call[Any]:
    """Mark (or unmark) a project, or one of its branches, to keep its runs whole."""
    path = f"/projects/{_segment(project)}/keep"
    options: dict[str, Any] = (
        {"json": {"branch": branch}} if keep else {"params": {"branch": branch}}
    )
    return Call(
        "PUT" if keep else "DELETE",
        path,
        f"{'marking' if keep else 'unmarking'} project {project!r}",
        lambda r: r.json(),
        idempotent=True,
        options=options,
    )


def retention() -> Call[Usage]:
    return Call(
        "GET",
        "/admin/retention",
        "reading the retention policy",
        lambda r: Usage.model_validate_json(r.content),
    )


def prune(dry_run: bool) -> Call[PruneReport]:
    return Call(
        "POST",
        "/admin/prune",
        "pruning",
        lambda r: PruneReport.model_validate_json(r.content),
        # Applying the policy twice removes nothing more.
        idempotent=True,
        options={"params": {"dry_run": dry_run}},
    )


def audit(limit: int) -> Call[list[AuditEvent]]:
    return Call(
        "GET",
        "/admin/audit",
        "reading the audit trail",
        lambda r: [AuditEvent.model_validate(item) for item in _json_object(r)["items"]],
        options={"params": {"limit": limit}},
    )


@dataclass(frozen=True)
class MachinePage:
    items: list[MachineInfo]
    next_cursor: str | None


def machines_page(cursor: str | None) -> Call[MachinePage]:
    def read(response: httpx.Response) -> MachinePage:
        data = _json_object(response)
        items = [MachineInfo.model_validate(item) for item in data["items"]]
        return MachinePage(items, data.get("next_cursor") or None)

    params: dict[str, Any] = {"limit": PAGE}
    if cursor:
        params["cursor"] = cursor
    return Call("GET", "/machines", "listing machines", read, options={"params": params})


# -- runs ------------------------------------------------------------------------------


def submit_run(run: RunLike) -> Call[SingleResult]:
    """One run document; stored once by its id, so sending it again is safe."""
    return Call(
        "POST",
        "/runs",
        "storing a run",
        lambda r: SingleResult.model_validate_json(r.content),
        idempotent=True,
        options={"content": run_json(run), "headers": JSON},
    )


def submit_runs(documents: list[str], probe: ProbeFigures | None = None) -> Call[BatchResult]:
    """Run documents (their JSON text, sent unchanged) and the round-trip figures measured
    beside them, gzip-compressed; raises TooLarge when the server's body limit is passed."""
    body = (
        '{"runs":['
        + ",".join(documents)
        + '],"probe":'
        + (probe.model_dump_json() if probe else "null")
        + "}"
    ).encode("utf-8")
    return Call(
        "POST",
        "/runs/batch",
        "storing runs",
        lambda r: BatchResult.model_validate_json(r.content),
        idempotent=True,
        options={
            "content": gzip.compress(body, compresslevel=5),
            "headers": {**JSON, "Content-Encoding": "gzip"},
        },
    )


def run(run_id: str) -> Call[RunDocument]:
    """A whole run document, as stored."""
    return Call(
        "GET",
        f"/runs/{_segment(run_id)}",
        f"reading run {run_id}",
        lambda r: RunDocument.model_validate_json(r.content),
    )


def baseline(params: Mapping[str, str]) -> Call[list[str]]:
    """The ids of the baseline runs ``GET /api/v1/baseline`` picks for these parameters
    (project, branch, commit, commit_time, mode, fingerprint or machine, limit; see
    docs/analysis.md, "Baselines that follow git"), newest first."""

    def read(response: httpx.Response) -> list[str]:
        return [str(item["id"]) for item in _json_object(response)["runs"]]

    return Call(
        "GET",
        "/baseline",
        f"finding the baseline runs of project {params.get('project')!r}",
        read,
        options={"params": dict(params)},
    )


# -- load tests ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadTestState:
    """Where a load test is, as the original harness's ``GET /test/{id}`` says."""

    id: str
    started: bool
    finished: bool


def loadtest_state(test_id: str) -> Call[LoadTestState]:
    def read(response: httpx.Response) -> LoadTestState:
        data = _json_object(response)
        return LoadTestState(
            str(data.get("id", test_id)), bool(data.get("started")), bool(data.get("finished"))
        )

    return Call(
        "GET", f"/test/{_segment(test_id)}", f"looking up load test {test_id!r}", read, api=False
    )


def send_datapoints(test_id: str, batch: bytes | Mapping[str, Any]) -> Call[BatchAck]:
    """One worker batch (its JSON, or the dict); kept once per (worker, incarnation,
    sequence), so sending it again is safe."""
    body = batch if isinstance(batch, bytes) else json.dumps(batch).encode()
    return Call(
        "POST",
        f"/loadtests/{_segment(test_id)}/datapoints",
        f"sending datapoints of load test {test_id!r}",
        lambda r: BatchAck.model_validate_json(r.content),
        idempotent=True,
        options={"content": body, "headers": JSON},
    )


def create_loadtest(definition: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """A new load test (``{"id"?, "started"?, "duration"?, "peers"?, "description"?,
    "thresholds"?}``); answers the test."""
    return Call(
        "POST",
        "/loadtests",
        "creating a load test",
        _json_object,
        idempotent=False,
        options={"json": dict(definition)},
    )


def start_loadtest(test_id: str) -> Call[dict[str, Any]]:
    return Call(
        "POST",
        f"/loadtests/{_segment(test_id)}/start",
        f"starting load test {test_id!r}",
        _json_object,
        idempotent=True,
    )


def finish_loadtest(test_id: str) -> Call[dict[str, Any]]:
    """Finish the test; answers ``{"test", "summary"}``."""
    return Call(
        "POST",
        f"/loadtests/{_segment(test_id)}/finish",
        f"finishing load test {test_id!r}",
        _json_object,
        idempotent=False,
    )


def mint_loadtest_token(test_id: str) -> Call[LoadTestToken]:
    """A new token for the workers of one load test (it may write to that test only)."""
    return Call(
        "POST",
        f"/loadtests/{_segment(test_id)}/tokens",
        f"making a token for load test {test_id!r}",
        lambda r: LoadTestToken.model_validate_json(r.content),
        # Each request makes another token.
        idempotent=False,
    )


def loadtest_summary(test_id: str) -> Call[dict[str, Any]]:
    """The kept summary of a finished test; the figures so far of a running one."""
    return Call(
        "GET",
        f"/loadtests/{_segment(test_id)}/summary",
        f"reading the summary of load test {test_id!r}",
        _json_object,
    )
