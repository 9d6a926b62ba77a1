"""Reading JSON inputs so that every failure names the JSON path that caused it.

Adapters walk a document through ``Node``: each access checks the type it expects and, when
the input disagrees, raises ``AdapterError`` with the path (``$.benchmarks[3].real_time``).
Tools write non-standard JSON in places: Google Benchmark prints bare ``NaN``, ``-NaN`` and
``Infinity``, JMH writes ``"NaN"`` as a string; ``number`` accepts all of those.
"""

from __future__ import annotations

import builtins
import functools
import gzip
import json
import math
import re
from collections.abc import Iterator
from typing import Any

from perffarm.adapters.base import AdapterError, InputSource

# Python's json reads NaN and Infinity but not the "-NaN" C++ streams print for a negative NaN.
_NEGATIVE_NAN = re.compile(r"(?<=[\[:,\s])-NaN\b")
_NUMBER_WORDS = {
    "nan": math.nan,
    "-nan": math.nan,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
    "inf": math.inf,
    "-inf": -math.inf,
}
_NOT_JSON = object()


def _decompressed(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"not a valid gzip file ({exc})") from None
    return data


@functools.lru_cache(maxsize=8)
def _load(data: bytes) -> Any:
    """Parsed JSON of ``data``, or ``_NOT_JSON``; cached because detection asks every adapter."""
    try:
        # utf-8-sig: .NET tools (BenchmarkDotNet) write a byte order mark on Windows.
        text = _decompressed(data).decode("utf-8-sig")
        return json.loads(_NEGATIVE_NAN.sub("NaN", text))
    except (ValueError, RecursionError):
        return _NOT_JSON


def _describe_error(data: bytes) -> str:
    try:
        text = _decompressed(data).decode("utf-8-sig")
    except ValueError as exc:
        return str(exc)
    try:
        json.loads(_NEGATIVE_NAN.sub("NaN", text))
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    except (ValueError, RecursionError) as exc:
        return str(exc) or type(exc).__name__
    return "unknown error"


def peek(source: InputSource) -> Any:
    """The parsed document or None; for ``sniff``, which must never raise."""
    if source.is_directory or not source.data:
        return None
    stripped = source.data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
    if stripped not in (b"{", b"[") and source.data[:2] != b"\x1f\x8b":
        return None
    document = _load(source.data)
    return None if document is _NOT_JSON else document


def source_name(source: InputSource) -> str:
    return source.path.name if source.path is not None else "input"


def load(source: InputSource, format_name: str) -> Node:
    """The root node of ``source``, or an ``AdapterError`` saying where the JSON is broken."""
    if source.is_directory:
        raise AdapterError(f"{source_name(source)} is a directory, not a {format_name} file")
    document = _load(source.data)
    if document is _NOT_JSON:
        raise AdapterError(
            f"{source_name(source)} is not valid {format_name} JSON: {_describe_error(source.data)}"
        )
    return Node(document, "$", source_name(source))


class Node:
    """A value inside a JSON document, with its path for error messages."""

    __slots__ = ("file", "path", "value")

    def __init__(self, value: Any, path: str, file: str = "input") -> None:
        self.value = value
        self.path = path
        self.file = file

    def error(self, message: str) -> AdapterError:
        return AdapterError(f"{self.file}: {self.path}: {message}")

    def _found(self) -> str:
        text = json.dumps(self.value) if not isinstance(self.value, float) else repr(self.value)
        return text if len(text) <= 40 else text[:37] + "..."

    def _child(self, value: Any, key: str | int) -> Node:
        if isinstance(key, int):
            return Node(value, f"{self.path}[{key}]", self.file)
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            return Node(value, f"{self.path}.{key}", self.file)
        return Node(value, f"{self.path}[{json.dumps(key)}]", self.file)

    # --- containers -------------------------------------------------------------------

    def is_object(self) -> bool:
        return isinstance(self.value, dict)

    def is_list(self) -> bool:
        return isinstance(self.value, list)

    def is_null(self) -> bool:
        return self.value is None

    def object(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self.error(f"expected an object, found {self._found()}")
        return self.value

    def list(self) -> list[Any]:
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, found {self._found()}")
        return self.value

    def __contains__(self, key: str) -> bool:
        return isinstance(self.value, dict) and key in self.value

    def get(self, key: str) -> Node:
        """The member ``key``, which must exist."""
        members = self.object()
        if key not in members:
            raise self.error(f"missing {key!r}")
        return self._child(members[key], key)

    def opt(self, key: str) -> Node | None:
        """The member ``key`` when present and not null."""
        members = self.object()
        if members.get(key) is None:
            return None
        return self._child(members[key], key)

    def items(self) -> Iterator[tuple[str, Node]]:
        for key, value in self.object().items():
            yield key, self._child(value, key)

    def elements(self) -> Iterator[Node]:
        for index, value in enumerate(self.list()):
            yield self._child(value, index)

    def at(self, index: int) -> Node:
        elements = self.list()
        if not -len(elements) <= index < len(elements):
            raise self.error(f"expected at least {index + 1} elements, found {len(elements)}")
        return self._child(elements[index], index)

    # --- scalars ----------------------------------------------------------------------

    def number(self) -> float:
        """A number; NaN/Infinity spelled as strings or bare words are accepted."""
        value = self.value
        if isinstance(value, bool):
            raise self.error(f"expected a number, found {self._found()}")
        if isinstance(value, int | float):
            return _float(value)
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _NUMBER_WORDS:
                return _NUMBER_WORDS[word]
            try:
                # protobuf's JSON mapping writes 64-bit integers as strings.
                return _float(int(value))
            except ValueError:
                pass
        raise self.error(f"expected a number, found {self._found()}")

    def integer(self) -> int:
        number = self.number()
        if not math.isfinite(number) or number != int(number):
            raise self.error(f"expected an integer, found {self._found()}")
        return int(number)

    def text(self) -> str:
        if not isinstance(self.value, str):
            raise self.error(f"expected a string, found {self._found()}")
        return self.value

    def text_or_none(self) -> str | None:
        return None if self.value is None else self.text()

    def numbers(self) -> builtins.list[float]:  # list alone is the method above
        return [element.number() for element in self.elements()]

    def opt_number(self, key: str) -> float | None:
        child = self.opt(key)
        return None if child is None else child.number()

    def opt_text(self, key: str) -> str | None:
        child = self.opt(key)
        return None if child is None else child.text()


def scalar_members(node: Node) -> dict[str, Any]:
    """The JSON-compatible content of an object for ``Parsed.environment`` or ``extra``."""
    return {key: _json_safe(value) for key, value in node.object().items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _float(value: int | float) -> float:
    """``value`` as a float; an integer beyond the largest one is infinite, as ``1e999`` is
    when JSON is read (the adapters then leave it out as a value that is not finite)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
