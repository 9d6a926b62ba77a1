"""The filesystem holding the run's working directory, and the disk beneath it.

On Linux the mount is found in /proc/self/mountinfo by the directory's device number, so
that no other mount point is touched (a dead network mount would hang a ``stat``). The
block device's model, rotational flag and I/O scheduler come from /sys/dev/block when the
filesystem sits on one (not for overlay, tmpfs or network filesystems).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from perffarm.agent.collectors._files import bracketed_choice, read_int, read_text
from perffarm.agent.collectors.base import CollectorContext


class Mount(NamedTuple):
    mount_point: str
    device: str
    fstype: str
    options: str


def collect(context: CollectorContext) -> dict[str, Any]:
    path = context.cwd.resolve()
    device_number = os.stat(path).st_dev
    mount = _mount_from_mountinfo(path, device_number) or _mount_from_psutil(path)
    usage = psutil.disk_usage(str(path))
    section: dict[str, Any] = {
        "path": str(path),
        "mount_point": mount.mount_point if mount else None,
        "device": mount.device if mount else None,
        "fstype": mount.fstype if mount else None,
        "mount_options": mount.options if mount else None,
        "total_bytes": usage.total,
        "free_bytes": usage.free,
    }
    section.update(block_device_facts(os.major(device_number), os.minor(device_number)))
    return section


def block_device_facts(major: int, minor: int, sys_root: Path = Path("/sys")) -> dict[str, Any]:
    """Model, rotational flag and scheduler of the whole disk behind a device number."""
    facts: dict[str, Any] = {
        "block_device": None,
        "rotational": None,
        "model": None,
        "scheduler": None,
    }
    link = sys_root / "dev" / "block" / f"{major}:{minor}"
    if not link.exists():
        return facts
    disk = link.resolve()
    # A partition's queue settings and model live on its parent disk.
    if (disk / "partition").exists():
        disk = disk.parent
    rotational = read_int(disk / "queue" / "rotational")
    model = read_text(disk / "device" / "model")
    facts.update(
        block_device=disk.name,
        rotational=None if rotational is None else rotational == 1,
        model=model or None,
        scheduler=bracketed_choice(read_text(disk / "queue" / "scheduler")),
    )
    return facts


def _mount_from_mountinfo(path: Path, device_number: int) -> Mount | None:
    text = read_text("/proc/self/mountinfo")
    if text is None:
        return None
    wanted = f"{os.major(device_number)}:{os.minor(device_number)}"
    best: Mount | None = None
    for line in text.splitlines():
        mount = _parse_mountinfo_line(line)
        if mount is None or mount[0] != wanted:
            continue
        found = mount[1]
        if _contains(found.mount_point, path) and (
            best is None or len(found.mount_point) > len(best.mount_point)
        ):
            best = found
    return best


def _parse_mountinfo_line(line: str) -> tuple[str, Mount] | None:
    # id parent major:minor root mount-point options [optional...] - fstype source super-options
    fields, separator, rest = line.partition(" - ")
    if not separator:
        return None
    head = fields.split()
    tail = rest.split()
    if len(head) < 6 or len(tail) < 2:
        return None
    return head[2], Mount(
        mount_point=_unescape(head[4]),
        device=_unescape(tail[1]),
        fstype=tail[0],
        options=head[5],
    )


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def _mount_from_psutil(path: Path) -> Mount | None:
    best: Mount | None = None
    for partition in psutil.disk_partitions(all=True):
        if _contains(partition.mountpoint, path) and (
            best is None or len(partition.mountpoint) > len(best.mount_point)
        ):
            best = Mount(partition.mountpoint, partition.device, partition.fstype, partition.opts)
    return best


def _contains(mount_point: str, path: Path) -> bool:
    return path == Path(mount_point) or Path(mount_point) in path.parents
