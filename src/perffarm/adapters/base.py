"""The adapter plug-in contract: read another tool's output into perffarm results.

An adapter is a class registered in the ``perffarm.adapters`` entry point group (built-ins
exactly like a third party's). It recognises its format from the content, never from the
file name, and parses it into ``Parsed``: results with every sample the tool kept, in
normalised units, with the tool's own unit kept in ``Result.original_unit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from perffarm.model import Attachment, Result, Series, Source, Table


class AdapterError(ValueError):
    """The input is not valid for this format; the message names the line or JSON path."""


@dataclass
class InputSource:
    """What an adapter reads: a file's bytes, or a directory (asv results, Criterion)."""

    path: Path | None
    data: bytes = b""

    @property
    def is_directory(self) -> bool:
        return self.path is not None and self.path.is_dir()

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    @classmethod
    def from_text(cls, text: str, path: Path | None = None) -> InputSource:
        return cls(path=path, data=text.encode("utf-8"))

    @classmethod
    def from_path(cls, path: Path) -> InputSource:
        return cls(path=path, data=b"" if path.is_dir() else path.read_bytes())


@dataclass
class Parsed:
    """Everything an adapter found in one input."""

    results: list[Result] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    # What the tool itself reported about the machine or run (go's cpu header, asv's
    # machine.json); kept as an environment section named after the adapter.
    environment: dict[str, Any] = field(default_factory=dict)
    source: Source | None = None


class Adapter:
    """Base class of format adapters."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def sniff(self, source: InputSource) -> bool:
        """True when the content looks like this format (cheap; must not raise)."""
        raise NotImplementedError

    def parse(self, source: InputSource) -> Parsed:
        """Parse the whole input or raise AdapterError naming where it went wrong."""
        raise NotImplementedError
