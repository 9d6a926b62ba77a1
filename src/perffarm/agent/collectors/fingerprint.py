"""The machine fingerprint: a hash of the environment keys that make results comparable.

Two runs with the same fingerprint ran on hardware and an OS that should give the same
numbers for the same code; a series (results compared over commits) never mixes
fingerprints. The keys are dotted paths into the environment's sections (``cpu.model``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from perffarm.model import Environment

DEFAULT_FINGERPRINT_KEYS: tuple[str, ...] = (
    "cpu.model",
    "cpu.sockets",
    "cpu.cores",
    "cpu.threads",
    "cpu.architecture",
    "memory.total_rounded_bytes",
    "os.distribution_id",
    "os.distribution_version",
    "os.kernel_release",
)
"""Hardware and OS, nothing that changes while the machine stays the same machine.

Frequencies, governor, free space, addresses and the Python build are left out on purpose:
they are settings of a run (recorded, shown next to results) rather than the identity of
the machine, and including them would split one machine's history on every tweak.
"""


def normalize_keys(keys: Iterable[str]) -> list[str]:
    """Keys sorted and without repeats: the same set always gives the same fingerprint."""
    if isinstance(keys, str):  # one key given bare must not become one key per character
        keys = [keys]
    cleaned = {key.strip() for key in keys}
    cleaned.discard("")
    return sorted(cleaned)


def fingerprint_of(environment: Environment, keys: Iterable[str]) -> str:
    """sha256 hex of the canonical JSON of ``{key: value}`` for the given dotted keys.

    A key with no value (its collector failed, or the machine lacks it) hashes as null, so
    a machine whose CPU collector failed does not silently join the series of a good one.
    """
    selected = {key: environment.get(key) for key in normalize_keys(keys)}
    canonical = json.dumps(selected, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
