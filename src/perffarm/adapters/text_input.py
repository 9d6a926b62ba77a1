"""Reading text outputs (go test, wrk, Catch2 ...) with errors that name the failing line."""

from __future__ import annotations

from collections.abc import Iterator

from perffarm.adapters.base import AdapterError, InputSource
from perffarm.adapters.json_input import source_name

# A decimal number as tools print it; strict, so that "1.2.3" is not taken for one.
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"


def numbered_lines(source: InputSource) -> Iterator[tuple[int, str]]:
    """(line number from 1, line without its end) of a text input."""
    for index, line in enumerate(source.text().splitlines(), start=1):
        yield index, line.rstrip("\r")


def line_error(source: InputSource, number: int, line: str, message: str) -> AdapterError:
    shown = line.strip()
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return AdapterError(f"{source_name(source)}: line {number}: {message}: {shown!r}")


def sniff_text(source: InputSource, limit: int = 65536) -> str:
    """The beginning of a text input for ``sniff``; empty for directories and binary data."""
    if source.is_directory or b"\x00" in source.data[:1024]:
        return ""
    return source.data[:limit].decode("utf-8", errors="replace")
