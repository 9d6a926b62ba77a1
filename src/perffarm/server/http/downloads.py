"""Answers that are files: a ``Content-Disposition`` any name survives (RFC 6266 and
RFC 8187: an ASCII fallback and the UTF-8 name), a media type a header can carry."""

from __future__ import annotations

import re
from urllib.parse import quote

_HEADER_SAFE_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+( *;[ -~]*)?$")


def disposition(name: str) -> str:
    """``attachment`` with the file name of ``name`` (its last path part)."""
    filename = name.rsplit("/", 1)[-1] or "attachment"
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\;' else "_" for c in filename)
    encoded = quote(filename, safe="")
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def media_type(stored: str | None) -> str:
    """The stored media type when a header can carry it (documents stored before it was
    checked may hold anything), else the generic one."""
    if stored and _HEADER_SAFE_TYPE.fullmatch(stored):
        return stored
    return "application/octet-stream"
