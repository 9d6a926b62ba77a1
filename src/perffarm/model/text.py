"""Text a request may carry: any characters but NUL, which SQLite keeps and PostgreSQL
refuses (one input, two answers) and which no name, note or description needs."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_without_nul)]
