"""Reading the small text files of /proc and /sys, where absence is normal, not an error."""

from __future__ import annotations

import re
from pathlib import Path

_SIZE_SUFFIXES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def read_text(path: str | Path) -> str | None:
    """The stripped content of a file, or None when it does not exist or cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def read_int(path: str | Path) -> int | None:
    text = read_text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def bracketed_choice(text: str | None) -> str | None:
    """The selected word of a sysfs choice list: ``always [madvise] never`` -> ``madvise``."""
    if text is None:
        return None
    match = re.search(r"\[([^\]]+)\]", text)
    return match.group(1) if match else text or None


def parse_cpu_list(text: str | None) -> list[int]:
    """Expand the kernel's CPU list format (``0-3,8,10-11``) into CPU numbers."""
    cpus: list[int] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


def parse_size(text: str | None) -> int | None:
    """Bytes from a sysfs size such as ``48K`` or ``32768K``; None when unreadable."""
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, flags=re.IGNORECASE)
    if not match:
        return None
    return int(match.group(1)) * _SIZE_SUFFIXES[match.group(2).upper()]


def read_key_values(path: str | Path, separator: str = ":") -> dict[str, str]:
    """``key<sep>value`` lines (as in /proc/meminfo), first occurrence wins."""
    values: dict[str, str] = {}
    for line in (read_text(path) or "").splitlines():
        key, found, value = line.partition(separator)
        if found:
            values.setdefault(key.strip(), value.strip())
    return values
