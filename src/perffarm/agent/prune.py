"""Keeping the agent's disk in bounds: old runs out of the local store (never one that no
server has acknowledged, unless forced), build directories of branches that are gone or
were not built for a while, and, with a budget, the oldest of both until under it.

Build directories go first when over budget: they are made again by the next build, a run
is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from perffarm.agent.build.workspace import BuildDirectory, build_directories, remove_tree
from perffarm.agent.store import LocalStore


@dataclass
class RemovedBuild:
    path: str
    reason: str
    bytes: int


@dataclass
class AgentPruneReport:
    dry_run: bool
    runs_removed: int = 0
    #: Old enough, but no server has acknowledged them yet.
    runs_kept_unacknowledged: int = 0
    builds_removed: list[RemovedBuild] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "runs_removed": self.runs_removed,
            "runs_kept_unacknowledged": self.runs_kept_unacknowledged,
            "builds_removed": [vars(build) for build in self.builds_removed],
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
        }


def _why_stale(build: BuildDirectory, before: datetime | None) -> str | None:
    if build.branch_exists is False:
        return "its branch is gone"
    if before is not None and build.last_built < before:
        return f"not built since {build.last_built:%Y-%m-%d}"
    return None


def prune(
    store: LocalStore,
    build_roots: list[Path],
    *,
    older_than: timedelta | None,
    budget: int | None = None,
    force: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
) -> AgentPruneReport:
    """Remove what the rules say; with ``dry_run`` only say it."""
    now = now or datetime.now(UTC)
    before = now - older_than if older_than is not None else None
    report = AgentPruneReport(dry_run=dry_run)
    builds = [build for root in build_roots for build in build_directories(root)]
    store_bytes = store.size()
    report.bytes_before = store_bytes + sum(build.size for build in builds)
    everything = store.prunable(None)
    share = store_bytes / max(1, len(everything))  # a run's share of the store's file

    # The rules: old runs, and builds of gone or idle branches.
    doomed_runs: list[str] = []
    candidates = store.prunable(before) if before is not None else []
    for run_id, _, acknowledged in candidates:
        if acknowledged or force:
            doomed_runs.append(run_id)
        else:
            report.runs_kept_unacknowledged += 1
    kept_builds = []
    for build in builds:
        reason = _why_stale(build, before)
        if reason is None:
            kept_builds.append(build)
        else:
            report.builds_removed.append(RemovedBuild(str(build.path), reason, build.size))

    # The budget: the least recently built directories, then the oldest acknowledged runs.
    if budget is not None:
        removed_bytes = sum(build.bytes for build in report.builds_removed)
        used = report.bytes_before - removed_bytes - share * len(doomed_runs)
        for build in kept_builds:  # oldest build first
            if used <= budget:
                break
            report.builds_removed.append(RemovedBuild(str(build.path), "over budget", build.size))
            used -= build.size
        doomed = set(doomed_runs)
        for run_id, _, acknowledged in everything:
            if used <= budget:
                break
            if run_id not in doomed and (acknowledged or force):
                doomed_runs.append(run_id)
                used -= share

    report.runs_removed = len(doomed_runs)
    if dry_run:
        freed = sum(b.bytes for b in report.builds_removed) + share * len(doomed_runs)
        report.bytes_after = int(report.bytes_before - freed)
        return report
    for removed in report.builds_removed:
        remove_tree(Path(removed.path))
    if doomed_runs:
        store.delete(doomed_runs)
        store.vacuum()
    # The directories were measured once, before: those kept are what is left.
    gone = {Path(build.path) for build in report.builds_removed}
    report.bytes_after = store.size() + sum(b.size for b in builds if b.path not in gone)
    return report
