"""Data over years: deleting runs and projects, retiring machines, deleting users, keep
marks, the retention policy and what it would remove, and the audit trail (admins)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request

from perffarm.model.api import MachineInfo, Page
from perffarm.model.lifecycle import (
    AuditEvent,
    KeepMark,
    KeepMarkRequest,
    KeepRequest,
    ProjectDeleted,
    PruneReport,
    RunDeleted,
    Usage,
)
from perffarm.model.users import UserAdminView
from perffarm.server import permissions
from perffarm.server.core.principal import Principal
from perffarm.server.core.timeutil import now
from perffarm.server.http.deps import acting_principal, admin_principal, connection
from perffarm.server.services import lifecycle
from perffarm.server.store import lifecycle as store
from perffarm.server.store import machines, users
from perffarm.server.store.transactions import writing

router = APIRouter(tags=["lifecycle"])


def _rebuild(request: Request) -> Any:
    detection = request.app.state.detection

    def rebuild(tracks: list[Any]) -> None:
        for key in tracks:
            detection.enqueue_track(key, rebuild=True)

    return rebuild


@router.delete("/runs/{run_id}", response_model=RunDeleted)
def delete_run(
    run_id: uuid.UUID, request: Request, who: Principal = Depends(acting_principal)
) -> RunDeleted:
    """Delete a run (its machine's owner or an admin), with the alerts it was the evidence
    of; recorded in the audit trail. Only its machine may send its id again."""
    alerts = lifecycle.delete_run(
        request.app.state.engine, who, str(run_id), on_tracks=_rebuild(request)
    )
    return RunDeleted(id=str(run_id), alerts_removed=alerts)


@router.put("/runs/{run_id}/keep", response_model=KeepRequest)
def keep_run(
    run_id: uuid.UUID,
    wanted: KeepRequest,
    who: Principal = Depends(acting_principal),
    conn: sa.Connection = Depends(connection),
) -> KeepRequest:
    """Mark a run to keep its samples whatever the retention (or unmark it): its machine's
    owner or an admin."""
    owner = store.run_owner(conn, str(run_id))
    permissions.may_manage_machine(who, owner.machine, machines.identity(conn, owner.machine))
    with writing(conn):
        store.set_run_keep(conn, str(run_id), wanted.keep)
    return wanted


@router.delete("/projects/{project}", response_model=ProjectDeleted)
def delete_project(
    project: str, request: Request, who: Principal = Depends(admin_principal)
) -> ProjectDeleted:
    """Delete every run of a project (admins); recorded in the audit trail."""
    deleted = lifecycle.delete_project(
        request.app.state.engine, who, project, on_tracks=_rebuild(request)
    )
    return ProjectDeleted(project=project, runs_deleted=deleted)


@router.get("/projects/{project}/keep", response_model=list[KeepMark])
def keep_marks(project: str, conn: sa.Connection = Depends(connection)) -> list[KeepMark]:
    """The marks that keep the samples of this project's runs (branch '' is all of it)."""
    return store.keep_marks(conn, project)


@router.put("/projects/{project}/keep", response_model=KeepMark)
def add_keep_mark(
    project: str,
    mark: KeepMarkRequest,
    who: Principal = Depends(admin_principal),
    conn: sa.Connection = Depends(connection),
) -> KeepMark:
    """Keep the samples of a project's runs (or one branch's) whatever the retention."""
    with writing(conn):
        return store.add_keep_mark(conn, project, mark.branch, by=who.describe())


@router.delete("/projects/{project}/keep", response_model=list[KeepMark])
def remove_keep_mark(
    project: str,
    branch: str = Query("", max_length=200, description="The branch; '' is the project."),
    _who: Principal = Depends(admin_principal),
    conn: sa.Connection = Depends(connection),
) -> list[KeepMark]:
    """Remove a keep mark; the retention applies to those runs again."""
    with writing(conn):
        store.remove_keep_mark(conn, project, branch)
    return store.keep_marks(conn, project)


@router.post("/machines/{name}/retire", response_model=MachineInfo)
def retire_machine(
    name: str,
    request: Request,
    who: Principal = Depends(acting_principal),
    conn: sa.Connection = Depends(connection),
) -> MachineInfo:
    """Retire a machine (its owner or an admin): its history stays on every chart, it
    uploads no more; recorded in the audit trail."""
    lifecycle.retire_machine(request.app.state.engine, who, name)
    return machines.get(conn, name, admin=True)


@router.delete("/users/{name}", response_model=UserAdminView)
def delete_user(
    name: str,
    who: Principal = Depends(admin_principal),
    conn: sa.Connection = Depends(connection),
) -> UserAdminView:
    """Delete a user (admins): their tokens, sessions and grants go; their machines and
    runs stay, managed by admins from then on. Recorded in the audit trail."""
    user = users.get(conn, name=name)
    view = user.admin_view()
    at = now()
    with writing(conn):
        store.delete_user(conn, user.id)
        store.record(conn, actor=who.describe(), action="delete user", target=name, at=at)
    return view


@router.get("/admin/retention", response_model=Usage)
def retention(request: Request, _who: Principal = Depends(admin_principal)) -> Usage:
    """The retention policy, what the database holds and what the policy would remove now."""
    return lifecycle.Retention(
        request.app.state.engine, request.app.state.settings.retention
    ).usage()


@router.post("/admin/prune", response_model=PruneReport)
def prune(
    request: Request,
    dry_run: bool = Query(False, description="Count what would go; change nothing."),
    who: Principal = Depends(admin_principal),
) -> PruneReport:
    """Apply the retention policy now, in small batches (the server does it daily)."""
    retention = lifecycle.Retention(request.app.state.engine, request.app.state.settings.retention)
    return retention.prune(dry_run=dry_run, actor=who.describe())


@router.get("/admin/audit", response_model=Page[AuditEvent])
def audit(
    cursor: int | None = Query(
        None, ge=1, le=2**62, description="next_cursor of the previous page"
    ),
    limit: int = Query(100, ge=1, le=1000),
    _who: Principal = Depends(admin_principal),
    conn: sa.Connection = Depends(connection),
) -> Page[AuditEvent]:
    """Who deleted, retired or pruned what, and when: newest first."""
    events = store.audit_events(conn, limit=limit + 1, before_id=cursor)
    more = len(events) > limit
    events = events[:limit]
    return Page[AuditEvent](items=events, next_cursor=str(events[-1].id) if more else None)
