"""A collector: the machine's position in the lab's racks."""

from __future__ import annotations

import os
from pathlib import Path

from perffarm.agent.collectors import CollectorContext


def collect(context: CollectorContext) -> dict | None:
    path = Path(os.environ.get("LAB_RACK_FILE", "/etc/rack-position"))
    if not path.exists():
        return None  # not in a rack: no section, and no error
    return {"rack": path.read_text().strip()}
