"""JSON in and out, fast: the dashboard's answers hold columns of 100,000 numbers and its
comparisons parse 5,000 results' samples at once."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pydantic_core

try:
    import orjson
except ImportError:  # pragma: no cover - orjson comes with the server extra
    orjson = None  # type: ignore[assignment]


def loads(text: str) -> Any:
    return orjson.loads(text) if orjson is not None else json.loads(text)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_json(value: Any) -> bytes:
    """JSON bytes, fast, with NaN (a missing value) written as null; numpy arrays as lists.

    orjson (when installed) writes numpy columns straight from their memory; pydantic-core
    is the fallback, several times faster than json.dumps either way.
    """
    if orjson is not None:
        try:
            return orjson.dumps(
                value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=_plain
            )
        except TypeError:
            pass  # e.g. an integer beyond 64 bits: pydantic-core writes it
    return pydantic_core.to_json(value, inf_nan_mode="null", fallback=_plain)
