"""The machines list and one machine's page."""

from __future__ import annotations

from typing import Any

from perffarm.server.store import machines as machine_store
from perffarm.server.store import runs as run_store
from perffarm.web.views import Reader


def hardware(metadata: dict[str, Any]) -> dict[str, Any]:
    """The few environment facts that tell machines apart at a glance."""
    cpu = metadata.get("cpu") or {}
    memory = metadata.get("memory") or {}
    os_info = metadata.get("os") or {}
    total = memory.get("total_bytes") or memory.get("total")
    return {
        "cpu": cpu.get("model") or cpu.get("brand"),
        "cores": cpu.get("cores") or cpu.get("logical_cores") or cpu.get("physical_cores"),
        "memory_gib": round(total / 2**30, 1) if isinstance(total, int | float) else None,
        "os": os_info.get("name") or os_info.get("system") or os_info.get("pretty_name"),
        "kernel": os_info.get("kernel") or os_info.get("release"),
    }


def _with_hardware(info: dict[str, Any]) -> dict[str, Any]:
    info["hardware"] = hardware(info.get("metadata") or {})
    return info


def visible_machines(read: Reader, owner: str | None = None) -> list[dict[str, Any]]:
    """Machines by name that the caller may see (the visibility rule), with their hardware."""
    items, _ = machine_store.listing(
        read.conn, admin=read.admin, owner=owner, after=None, limit=1000, viewer=read.viewer
    )
    return [_with_hardware(info.model_dump(mode="json")) for info in items]


def machines(read: Reader, _: None = None) -> dict[str, Any]:
    """Machines with a hardware summary, owner, approval and last seen."""
    return {"machines": visible_machines(read)}


def machine(read: Reader, name: str) -> dict[str, Any]:
    """One machine, its fingerprint changes and its latest runs."""
    info = machine_store.get(read.conn, name, admin=read.admin, viewer=read.viewer)
    runs, next_cursor = run_store.list_runs(
        read.conn,
        run_store.RunFilter(machine=name),
        admin=read.admin,
        cursor=None,
        limit=100,
        viewer=read.viewer,
    )
    return {
        "machine": _with_hardware(info.model_dump(mode="json")),
        "runs": [run.model_dump(mode="json") for run in runs],
        "more_runs": next_cursor is not None,
    }
