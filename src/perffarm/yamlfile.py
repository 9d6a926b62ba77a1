"""The one YAML loader: a file read with ruamel's round-trip loader, which keeps the line of
every key, and the ``file:line: key: message`` form every configuration error takes.

A leaf module (it imports nothing of perffarm); ruamel is imported when a file is loaded,
not when this module is, so that commands which never read YAML do not pay for it. The
suite loader (``perffarm.agent.config``) and the CI gate's ``analysis:`` reader
(``perffarm.analysis.config``) both go through it, so a broken file gives the same line
either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Location = Sequence[str | int]


class YamlFileError(ValueError):
    """The file cannot be read or is not valid YAML; the message names the file and line.

    ``line`` is 1-based, None when the parser could not say where.
    """

    def __init__(self, message: str, *, path: Path, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


def load_yaml(path: Path) -> Any:
    """The document in ``path``: mappings and lists that remember their lines (``line_of``).

    Raises YamlFileError: ``FILE: cannot read the file: REASON`` or
    ``FILE:LINE: invalid YAML: PROBLEM``.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlFileError(f"{path}: cannot read the file: {exc}", path=path) from None
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlFileError(
            f"{path}:{line}: invalid YAML: {problem}", path=path, line=line
        ) from None
    except Exception as exc:  # ruamel raises several unrelated types for broken input
        # Some say where in the text (a reader error's position) on lines of their own.
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        position = getattr(exc, "position", None)
        where = f":{text.count(chr(10), 0, position) + 1}" if isinstance(position, int) else ""
        raise YamlFileError(f"{path}{where}: invalid YAML: {problem}", path=path) from None


def line_of(data: Any, location: Location) -> int | None:
    """The 1-based line of the deepest part of ``location`` that exists in ``data``.

    ``location`` is a path of mapping keys and list indexes, as pydantic's error ``loc``;
    None when not even its first part is in the document (or ``data`` is not from
    ``load_yaml``).
    """
    node = data
    line = None
    for part in location:
        lines = getattr(node, "lc", None)
        if lines is None:
            break
        try:
            if isinstance(node, Mapping) and part in node:
                line = lines.key(part)[0] + 1
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                line = lines.item(part)[0] + 1
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
        node = node[part]
    return line


def dotted(location: Location) -> str:
    """``measurements[0].name``: a location as a person reads it; ``(top level)`` if empty."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def located(path: Path, data: Any, location: Location, message: str) -> str:
    """``FILE:LINE: KEY: MESSAGE``, the line being the deepest part of the location found
    (line 1 when none is)."""
    return f"{path}:{line_of(data, location) or 1}: {dotted(location)}: {message}"


def plain(value: Any) -> Any:
    """ruamel's commented mappings and lists as plain dicts (string keys) and lists."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
