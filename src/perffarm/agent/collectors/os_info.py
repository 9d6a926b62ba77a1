"""The operating system: kernel, distribution, boot time, container, and a sysctl subset.

The sysctl subset (``SYSCTL_KEYS``) holds the kernel settings known to move benchmark
results or to explain a surprising one. Each is read from /proc/sys; a setting the kernel
does not have is left out rather than reported as None.

- ``kernel.randomize_va_space``: ASLR changes memory layout, hence cache and TLB behaviour,
  from one process start to the next.
- ``kernel.perf_event_paranoid``, ``kernel.nmi_watchdog``: what profiling measurements may
  do; the NMI watchdog also keeps one hardware counter busy and interrupts every CPU.
- ``kernel.numa_balancing``: automatic page migration between NUMA nodes during a run.
- ``kernel.sched_autogroup_enabled``, ``kernel.sched_rt_runtime_us``,
  ``kernel.sched_migration_cost_ns``, ``kernel.sched_min_granularity_ns``,
  ``kernel.timer_migration``: scheduler behaviour (the last two exist on older kernels).
- ``vm.swappiness``, ``vm.overcommit_memory``, ``vm.dirty_ratio``,
  ``vm.dirty_background_ratio``, ``vm.zone_reclaim_mode``: when memory is paged out and when
  dirty pages are written back, which dominates I/O-heavy benchmarks (databases).
- ``net.core.somaxconn``, ``net.core.netdev_max_backlog``, ``net.core.rmem_max``,
  ``net.core.wmem_max``, ``net.ipv4.tcp_congestion_control``, ``net.ipv4.tcp_rmem``,
  ``net.ipv4.tcp_wmem``, ``net.ipv4.ip_local_port_range``, ``net.ipv4.tcp_tw_reuse``:
  connection queues, socket buffers and port reuse, which cap load tests.
- ``fs.file-max``: how many files (and so sockets) the whole system may open.
"""

from __future__ import annotations

import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from perffarm.agent.collectors._files import read_text
from perffarm.agent.collectors.base import CollectorContext

SYSCTL_KEYS: tuple[str, ...] = (
    "kernel.randomize_va_space",
    "kernel.perf_event_paranoid",
    "kernel.nmi_watchdog",
    "kernel.numa_balancing",
    "kernel.sched_autogroup_enabled",
    "kernel.sched_rt_runtime_us",
    "kernel.sched_migration_cost_ns",
    "kernel.sched_min_granularity_ns",
    "kernel.timer_migration",
    "vm.swappiness",
    "vm.overcommit_memory",
    "vm.dirty_ratio",
    "vm.dirty_background_ratio",
    "vm.zone_reclaim_mode",
    "net.core.somaxconn",
    "net.core.netdev_max_backlog",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "fs.file-max",
)

PROC_SYS = Path("/proc/sys")
DMI = Path("/sys/class/dmi/id")


def collect(context: CollectorContext) -> dict[str, Any]:
    release = os_release()
    return {
        "system": platform.system() or None,
        "kernel_release": platform.release() or None,
        "kernel_version": platform.version() or None,
        "distribution": release.get("PRETTY_NAME") or _non_linux_distribution(),
        "distribution_id": release.get("ID"),
        "distribution_version": release.get("VERSION_ID"),
        "hostname": socket.gethostname(),
        "boot_time": datetime.fromtimestamp(psutil.boot_time(), UTC).isoformat(),
        "container": container_kind(),
        "machine_vendor": read_text(DMI / "sys_vendor") or None,
        "machine_model": read_text(DMI / "product_name") or None,
        "open_files_limit": _open_files_limit(),
        "sysctl": read_sysctl(SYSCTL_KEYS),
    }


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    """The fields of os-release(5), quotes removed; /usr/lib/os-release is the fallback."""
    text = read_text(path)
    if text is None:
        text = read_text("/usr/lib/os-release") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, found, value = line.partition("=")
        if found and not key.startswith("#"):
            fields[key.strip()] = value.strip().strip("\"'")
    return fields


def read_sysctl(keys: tuple[str, ...] | list[str], root: Path = PROC_SYS) -> dict[str, Any]:
    """Current values of sysctl keys: int when the value is one number, else the text with
    whitespace runs collapsed (``4096 131072 6291456``)."""
    values: dict[str, Any] = {}
    for key in keys:
        text = read_text(root / key.replace(".", "/"))
        if text is None:
            continue
        try:
            values[key] = int(text)
        except ValueError:
            values[key] = " ".join(text.split())
    return values


def container_kind() -> str | None:
    """The kind of container this process runs in, from cheap hints; None on the host."""
    # Lower-case by convention: systemd-nspawn, podman and LXC set it for PID 1.
    declared = os.environ.get("container")  # noqa: SIM112
    if declared:
        return declared
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if Path("/run/.containerenv").exists():
        return "podman"
    if Path("/.dockerenv").exists():
        return "docker"
    cgroups = read_text("/proc/1/cgroup") or ""
    for marker, kind in (("kubepods", "kubernetes"), ("docker", "docker"), ("lxc", "lxc")):
        if marker in cgroups:
            return kind
    return None


def _non_linux_distribution() -> str | None:
    if platform.system() == "Darwin":
        version = platform.mac_ver()[0]
        return f"macOS {version}" if version else "macOS"
    if platform.system() == "Windows":
        return f"Windows {platform.win32_ver()[0]} {platform.win32_edition() or ''}".strip()
    return None


def _open_files_limit() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft
