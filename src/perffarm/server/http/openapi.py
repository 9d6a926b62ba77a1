"""The OpenAPI document as the server answers: every error of the API in its one shape
(``ErrorBody``: ``detail`` and the fields at fault), documented as each operation's
``default`` answer, so that a generated client can trust the document.

FastAPI documents validation errors as its own ``HTTPValidationError``; perffarm answers
them, like every other error, with ``ErrorBody`` (``http/errors.py``). The OAuth endpoints
answer RFC 6749 errors, and the original load-test harness's routes their own bodies.
"""

from __future__ import annotations

import copy
from typing import Any

from perffarm.model.api import ErrorBody

_REF = "#/components/schemas/"
_OAUTH_ERROR = {
    "title": "OAuthError",
    "type": "object",
    "description": "An RFC 6749 error; detail repeats the description.",
    "properties": {
        "error": {"type": "string"},
        "error_description": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {}},
    },
    "required": ["error", "error_description", "detail"],
}
_HARNESS_ANSWER = {
    "type": "object",
    "description": 'The original harness\'s answer, e.g. {"status": "test-not-found"}.',
}


def _replace_refs(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {
            k: (new if k == "$ref" and v == old else _replace_refs(v, old, new))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_replace_refs(v, old, new) for v in node]
    return node


def _error_schema(path: str) -> dict[str, Any]:
    if path.startswith("/api/"):
        return {"$ref": f"{_REF}ErrorBody"}
    if path.startswith(("/oauth/", "/.well-known/")):
        return {"$ref": f"{_REF}OAuthError"}
    return _HARNESS_ANSWER


def with_error_answers(document: dict[str, Any]) -> dict[str, Any]:
    """The document FastAPI made, with perffarm's error answers described."""
    document = copy.deepcopy(document)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    body = ErrorBody.model_json_schema(ref_template=f"{_REF}{{model}}")
    for name, definition in body.pop("$defs", {}).items():
        schemas[name] = definition
    schemas["ErrorBody"] = body
    schemas["OAuthError"] = _OAUTH_ERROR
    document = _replace_refs(document, f"{_REF}HTTPValidationError", f"{_REF}ErrorBody")
    schemas = document["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation["responses"].setdefault(
                "default",
                {
                    "description": "An error: what is wrong and what to do",
                    "content": {"application/json": {"schema": _error_schema(path)}},
                },
            )
    return document
