"""Memory: RAM, swap, huge pages and NUMA nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil

from perffarm.agent.collectors._files import (
    bracketed_choice,
    parse_size,
    read_key_values,
    read_text,
)
from perffarm.agent.collectors.base import CollectorContext

GIB = 1024**3
MIB = 1024**2
THP_DIR = Path("/sys/kernel/mm/transparent_hugepage")


def collect(context: CollectorContext) -> dict[str, Any]:
    total = psutil.virtual_memory().total
    meminfo = read_key_values("/proc/meminfo")
    nodes = list(Path("/sys/devices/system/node").glob("node[0-9]*"))
    return {
        "total_bytes": total,
        "total_rounded_bytes": rounded_total(total),
        "swap_total_bytes": psutil.swap_memory().total,
        "huge_pages_total": _int(meminfo.get("HugePages_Total")),
        "huge_pages_free": _int(meminfo.get("HugePages_Free")),
        "huge_page_size_bytes": parse_size(meminfo.get("Hugepagesize", "").replace(" kB", "K")),
        "transparent_hugepage": bracketed_choice(read_text(THP_DIR / "enabled")),
        "transparent_hugepage_defrag": bracketed_choice(read_text(THP_DIR / "defrag")),
        "numa_nodes": len(nodes) or None,
    }


def rounded_total(total_bytes: int) -> int:
    """Installed memory rounded so that the kernel's own reservations do not show.

    MemTotal is physical memory minus what the kernel keeps, which moves by a few MiB
    between kernel builds or boot options; the fingerprint uses this rounded figure so the
    same machine stays the same machine. Nearest GiB, or nearest 64 MiB below 2 GiB.
    """
    unit = GIB if total_bytes >= 2 * GIB else 64 * MIB
    return max(unit, round(total_bytes / unit) * unit)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
