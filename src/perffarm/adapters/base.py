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

from pydantic import ValidationError

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

    def named(self, benchmark: str) -> Parsed:
        """The same results under another benchmark name: a tool that knows one benchmark
        (pgbench, wrk, hyperfine of one command) names it after itself, where a suite names
        the measurement; renamed, an ingested output lands in the suite's series."""
        names = sorted({result.benchmark for result in self.results})
        if len(names) > 1:
            shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
            raise AdapterError(
                f"the input holds {len(names)} benchmarks ({shown}); a new name fits one only"
            )
        try:
            self.results = [
                Result.model_validate({**r.model_dump(), "benchmark": benchmark})
                for r in self.results
            ]
        except ValidationError as exc:
            raise AdapterError(f"benchmark {benchmark!r}: {exc.errors()[0]['msg']}") from None
        return self


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
