"""The Python running the agent: which one, how it was built, and for how many bits."""

from __future__ import annotations

import platform
import struct
import sys
import sysconfig
from typing import Any

from perffarm.agent.collectors.base import CollectorContext


def collect(context: CollectorContext) -> dict[str, Any]:
    build_name, build_date = platform.python_build()
    gil_check = getattr(sys, "_is_gil_enabled", None)
    return {
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
        "compiler": platform.python_compiler() or None,
        "build": f"{build_name}, {build_date}",
        # Optimisation flags (PGO, LTO, -O levels) change interpreter speed by tens of %.
        "cflags": sysconfig.get_config_var("PY_CFLAGS") or None,
        "executable": sys.executable or None,
        "bits": struct.calcsize("P") * 8,
        "gil_enabled": gil_check() if gil_check is not None else True,
    }
