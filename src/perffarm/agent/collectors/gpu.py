"""NVIDIA GPUs, through ``nvidia-smi`` when it is installed; None on machines without it.

Only fields every driver since the 400 series knows are queried, so an old driver does not
turn the whole query into an error.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from typing import Any

from perffarm.agent.collectors.base import CollectorContext

MIB = 1024**2
QUERY_TIMEOUT_SECONDS = 8.0

# nvidia-smi field -> (section key, converter of the nounits text)
FIELDS: dict[str, tuple[str, Any]] = {
    "index": ("index", int),
    "name": ("name", str),
    "uuid": ("uuid", str),
    "pci.bus_id": ("pci_bus_id", str),
    "driver_version": ("driver_version", str),
    "memory.total": ("memory_total_bytes", lambda text: int(float(text) * MIB)),
    "clocks.max.sm": ("max_sm_mhz", int),
    "clocks.max.memory": ("max_memory_mhz", int),
    "power.limit": ("power_limit_watts", float),
    "persistence_mode": ("persistence_mode", str),
}


def collect(context: CollectorContext) -> dict[str, Any] | None:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    completed = subprocess.run(
        [executable, f"--query-gpu={','.join(FIELDS)}", "--format=csv,noheader,nounits"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=QUERY_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        # The tool is there but cannot talk to the driver: worth an entry in errors.
        message = (completed.stderr or completed.stdout).strip().splitlines()
        raise RuntimeError(
            f"nvidia-smi exited with {completed.returncode}: "
            f"{message[0] if message else 'no output'}"
        )
    gpus = parse_query_output(completed.stdout)
    if not gpus:
        return None
    return {
        "count": len(gpus),
        "driver_version": gpus[0].get("driver_version"),
        "gpus": gpus,
    }


def parse_query_output(text: str) -> list[dict[str, Any]]:
    """Rows of ``--format=csv,noheader,nounits`` output, one dict per GPU."""
    gpus = []
    for row in csv.reader(line for line in text.splitlines() if line.strip()):
        gpu: dict[str, Any] = {}
        for (key, convert), raw in zip(FIELDS.values(), row, strict=False):
            value = raw.strip()
            # "[N/A]" and "[Not Supported]" mean the GPU does not report this field.
            if not value or value.startswith("["):
                gpu[key] = None
                continue
            try:
                gpu[key] = convert(value)
            except ValueError:
                gpu[key] = value
        gpus.append(gpu)
    return gpus
