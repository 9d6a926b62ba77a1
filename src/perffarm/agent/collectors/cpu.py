"""The processor: identity, topology, frequencies, caches and the knobs that move results.

Linux reads /proc/cpuinfo and /sys/devices/system/cpu; elsewhere the section holds what
psutil and the platform module can tell (model and counts), with the rest None.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from perffarm.agent.collectors._files import (
    parse_cpu_list,
    parse_size,
    read_int,
    read_key_values,
    read_text,
)
from perffarm.agent.collectors.base import CollectorContext

SYS_CPU = Path("/sys/devices/system/cpu")
PROC_CPUINFO = Path("/proc/cpuinfo")


def collect(context: CollectorContext) -> dict[str, Any]:
    # First occurrence wins: the first processor block, then any trailing board fields (ARM).
    first_cpu = read_key_values(PROC_CPUINFO)
    section: dict[str, Any] = {
        "model": _model_name(first_cpu),
        "vendor": first_cpu.get("vendor_id") or first_cpu.get("CPU implementer"),
        "family": _int_or_none(first_cpu.get("cpu family")),
        "model_number": _int_or_none(first_cpu.get("model")),
        "stepping": _int_or_none(first_cpu.get("stepping")),
        "microcode": first_cpu.get("microcode"),
        "architecture": platform.machine() or None,
        "sockets": _socket_count(),
        "cores": psutil.cpu_count(logical=False),
        "threads": os.cpu_count(),
        # In a container or under taskset the process may use fewer CPUs than exist.
        "affinity_threads": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
    }
    section.update(_frequencies())
    section.update(_cache_sizes(SYS_CPU / "cpu0" / "cache"))
    section.update(
        {
            "governor": read_text(SYS_CPU / "cpu0" / "cpufreq" / "scaling_governor"),
            "scaling_driver": read_text(SYS_CPU / "cpu0" / "cpufreq" / "scaling_driver"),
            "turbo": _turbo_enabled(),
            "smt": read_text(SYS_CPU / "smt" / "control"),
            "isolated_cpus": parse_cpu_list(read_text(SYS_CPU / "isolated")),
            "nohz_full_cpus": parse_cpu_list(read_text(SYS_CPU / "nohz_full")),
            "hypervisor": _hypervisor_flag(first_cpu),
        }
    )
    return section


def _model_name(first_cpu: dict[str, str]) -> str | None:
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if first_cpu.get(key):
            return first_cpu[key]
    if sys.platform == "darwin":
        try:
            brand = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            brand = ""
        if brand:
            return brand
    return platform.processor() or platform.machine() or None


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


def _socket_count() -> int | None:
    packages = {
        read_text(topology / "physical_package_id")
        for topology in SYS_CPU.glob("cpu[0-9]*/topology")
    }
    packages.discard(None)
    if packages:
        return len(packages)
    physical_ids = set(re.findall(r"^physical id\s*:\s*(\d+)", read_text(PROC_CPUINFO) or "", re.M))
    return len(physical_ids) or None


def _frequencies() -> dict[str, float | None]:
    try:
        frequency = psutil.cpu_freq()
    except (OSError, NotImplementedError, AttributeError):
        frequency = None

    # psutil reports 0 when the kernel exposes no limit (common in VMs): unknown, not zero.
    def known(value: float | None) -> float | None:
        return round(value, 3) if value else None

    return {
        "min_mhz": known(frequency.min) if frequency else None,
        "max_mhz": known(frequency.max) if frequency else None,
        "current_mhz": known(frequency.current) if frequency else None,
    }


def _cache_sizes(cache_dir: Path) -> dict[str, int | None]:
    """Per-instance size of each cache level seen by CPU 0 (as lscpu's 'per core' sizes)."""
    sizes: dict[str, int | None] = {
        "l1d_cache_bytes": None,
        "l1i_cache_bytes": None,
        "l2_cache_bytes": None,
        "l3_cache_bytes": None,
    }
    for index in sorted(cache_dir.glob("index[0-9]*")):
        level = read_text(index / "level")
        kind = read_text(index / "type")
        size = parse_size(read_text(index / "size"))
        if level is None or size is None:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind or "", "")
        sizes[f"l{level}{suffix}_cache_bytes"] = size
    return sizes


def _turbo_enabled() -> bool | None:
    """Whether the CPU may boost above its base clock; None when the kernel does not say."""
    no_turbo = read_int(SYS_CPU / "intel_pstate" / "no_turbo")
    if no_turbo is not None:
        return no_turbo == 0
    boost = read_int(SYS_CPU / "cpufreq" / "boost")
    if boost is not None:
        return boost == 1
    return None


def _hypervisor_flag(first_cpu: dict[str, str]) -> bool | None:
    flags = first_cpu.get("flags")
    return None if flags is None else "hypervisor" in flags.split()
