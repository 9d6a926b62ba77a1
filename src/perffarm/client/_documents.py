"""Run documents as the client accepts them: the model, its dict, or its JSON."""

from __future__ import annotations

import json
from typing import Any

from perffarm.model import RunDocument

RunLike = RunDocument | dict[str, Any] | str | bytes


def run_json(run: RunLike) -> bytes:
    """The document's JSON bytes; checked here, so a mistake is found before sending."""
    if isinstance(run, RunDocument):
        return run.to_json().encode()
    if isinstance(run, dict):
        return RunDocument.model_validate(run).to_json().encode()
    if isinstance(run, str | bytes):
        return RunDocument.model_validate_json(run).to_json().encode()
    raise TypeError(f"a run is a RunDocument, its dict or its JSON, not {type(run).__name__}")


def run_id(document: bytes) -> str:
    return str(json.loads(document)["id"])
